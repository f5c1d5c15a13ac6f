"""Loopback simulator of Novita's MiniMax Hailuo-02 API (providers.md §4, seed 003).

Routes (``base_url`` is like ``https://api.novita.ai``):
  POST /v3/async/minimax-hailuo-02            submit -> {"task_id"}
  GET  /v3/async/task-result?task_id=         TASK_STATUS_QUEUED -> _PROCESSING (progress_percent)
                                              -> _SUCCEED (videos[0].video_url, TTL "3600")
                                              | _FAILED (task.reason) | _CANCELED
  GET  /download/<uuid>/output.mp4?Expires=&Signature=   the "CDN", no key

Behaviours from the docs that adapters get wrong: 403 is both a wrong key
(``INVALID_API_KEY``) and an empty account (``NOT_ENOUGH_BALANCE``); the video URL lives
an hour (each query here signs a fresh one, which is [UNKNOWN] for the real API);
moderation is a failed task with a reason, never a submit error. The error body's shape
is [UNKNOWN]: ``{"code", "reason", "message", "metadata"}`` by default, and a fault that
nests it under ``error`` to keep adapters honest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.sims.base import (
    Fault,
    camera_spelling_problems,
    image_ref_problems,
    json_body_problems,
    schema_errors,
)
from tests.sims.tasks import COMMON_FAULTS, TaskSimulator
from tests.sims.tasks import SimTask as BaseTask

SUBMIT, QUERY, DOWNLOAD = "submit", "query", "download"
SCHEMA = "novita.json"
QUEUED, PROCESSING = "TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING"
SUCCEED, FAILED, CANCELED = "TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELED"
#: [UNKNOWN] the real moderation reason; this one reads like one.
MODERATION_REASON = "The input or output was flagged as sensitive content (NSFW)."


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"code": status, "reason": reason, "message": message, "metadata": {}}


def http_error(status: int, reason: str, message: str, *, retry_after: int | None = None) -> Fault:
    body = error_body(status, reason, message)
    return Fault.http(status, body, retry_after=retry_after, name=reason.lower())


FAULTS: dict[str, Fault] = {
    **COMMON_FAULTS,
    "http_400": http_error(400, "INVALID_REQUEST_BODY", "invalid request body"),
    "http_500": http_error(500, "INTERNAL_SERVER_ERROR", "internal error"),
    "http_502": Fault.http(502, {"message": "bad gateway"}),
    "http_503": http_error(503, "SERVICE_NOT_AVAILABLE", "service not available"),
    "http_429": http_error(429, "RATE_LIMIT_EXCEEDED", "rate limit exceeded", retry_after=2),
    "no_balance": http_error(403, "NOT_ENOUGH_BALANCE", "not enough balance"),
    "no_balance_nested": Fault.http(
        403,
        {"error": error_body(403, "NOT_ENOUGH_BALANCE", "not enough balance")},
        name="no_balance_nested",
    ),
    "access_denied": http_error(403, "ACCESS_DENY", "identity verification required"),
    "moderation": Fault("task_fail", "moderation", msg=MODERATION_REASON),
    "generation_failed": Fault("task_fail", "generation_failed", msg="internal inference error"),
    "canceled": Fault("task_cancel", "canceled"),
}


@dataclass
class SimTask(BaseTask):
    status: str = QUEUED
    reason: str = ""


def rule_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    if body.get("resolution") == "1080P" and body.get("duration", 6) != 6:
        problems.append("1080P supports 6 s only")
    if "end_image" in body and "image" not in body:
        problems.append("end_image needs image")
    for key in ("image", "end_image"):
        if key in body:
            problems += image_ref_problems(key, body[key])
    return problems + camera_spelling_problems(body.get("prompt"), "english")


class NovitaSimulator(TaskSimulator):
    """Novita's Hailuo-02 API on loopback. Read ``submits``, ``tasks``, ``violations``."""

    API_KEY = "nv-test-key"
    URL_TTL = 3600
    TERMINAL = (SUCCEED, FAILED, CANCELED)
    DONE, RUNNING = SUCCEED, PROCESSING
    TASK_FAULTS = frozenset({"task_fail", "task_cancel"})
    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        SUBMIT: frozenset({"accept_then_drop"}),
        QUERY: TASK_FAULTS,
    }

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v3/async/minimax-hailuo-02", self._submit, name=SUBMIT)
        router.add_get("/v3/async/task-result", self._query, name=QUERY)

    # -- test controls

    def fail(self, task_id: str, reason: str = MODERATION_REASON) -> SimTask:
        return self.end(task_id, FAILED, reason=reason)

    def cancel(self, task_id: str) -> SimTask:
        return self.end(task_id, CANCELED)

    def webhook_body(self, task_id: str) -> dict[str, Any]:
        """The V3 webhook event: the task-result reply under ``payload``."""
        return {"event_type": "ASYNC_TASK_RESULT", "payload": _reply(self, self.tasks[task_id])}

    # -- handlers

    async def _query(self, request: web.Request) -> web.StreamResponse:
        return await self._answer_query(request, QUERY, request.query.get("task_id", ""))

    def _submit_problems(self, request: web.Request, body: Any) -> list[str]:
        return json_body_problems(request, body) or (
            schema_errors(SCHEMA, body) + rule_problems(body)
        )

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return web.json_response(error_body(401, "FAILED_TO_AUTH", "missing key"), status=401)
        if header.removeprefix("Bearer ").strip() != self.api_key:
            return web.json_response(
                error_body(403, "INVALID_API_KEY", "invalid api key"), status=403
            )
        return None

    def _refuse(self, problems: list[str]) -> web.Response:
        return web.json_response(error_body(400, "INVALID_REQUEST_BODY", problems[0]), status=400)

    def _new_task(self, request: web.Request, body: dict[str, Any]) -> SimTask:
        return SimTask(str(uuid.uuid4()), body, self.polls_until_done, self.video)

    def _accepted(self, task: SimTask) -> web.Response:
        return web.json_response({"task_id": task.task_id})

    def _lookup(self, request: web.Request, task_id: str) -> SimTask | web.Response:
        task = self.tasks.get(task_id)
        if task is None:
            # [INFERRED] the reply for an unknown task is undocumented.
            reply = error_body(404, "TASK_NOT_FOUND", "task not found")
            return web.json_response(reply, status=404)
        return task

    def _task_fault(self, task: SimTask, fault: Fault) -> None:
        if fault.kind == "task_fail":
            self.fail(task.task_id, fault.msg)
        else:
            self.cancel(task.task_id)

    def _query_reply(self, task: SimTask, endpoint: str) -> dict[str, Any]:
        return _reply(self, task)


def _reply(sim: NovitaSimulator, task: SimTask) -> dict[str, Any]:
    done = task.status == SUCCEED
    total = task.polls_until_done or 10
    progress = 100 if done else min(99, 100 * max(0, task.polls - 1) // (total + 1))
    videos = []
    if done and task.blob_token is not None:
        ttl = str(int(sim.url_ttl))  # a *string* in the docs' example
        url = sim.signed_url(task.blob_token)
        videos = [{"video_url": url, "video_url_ttl": ttl, "video_type": "mp4"}]
    return {
        "task": {
            "task_id": task.task_id,
            "task_type": "MINIMAX_HAILUO_02",
            "status": task.status,
            "reason": task.reason,
            "eta": 0 if task.status in sim.TERMINAL else 120,
            "progress_percent": progress if task.status != FAILED else 0,
        },
        "images": [],
        "videos": videos,
        "extra": {"seed": "0", "debug_info": {}},
    }
