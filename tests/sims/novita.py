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

import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests import media
from tests.sims.base import (
    DROP,
    EXPIRED_URL,
    HANG,
    MALFORMED_JSON,
    Clock,
    Fault,
    SimServer,
    camera_spelling_problems,
    drop_connection,
    image_ref_problems,
    json_body_problems,
    recorded,
    schema_errors,
)

SUBMIT, QUERY, DOWNLOAD = "submit", "query", "download"
SCHEMA = "novita.json"
QUEUED, PROCESSING = "TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING"
SUCCEED, FAILED, CANCELED = "TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELED"
TERMINAL = (SUCCEED, FAILED, CANCELED)
#: [UNKNOWN] the real moderation reason; this one reads like one.
MODERATION_REASON = "The input or output was flagged as sensitive content (NSFW)."


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"code": status, "reason": reason, "message": message, "metadata": {}}


def http_error(status: int, reason: str, message: str, *, retry_after: int | None = None) -> Fault:
    body = error_body(status, reason, message)
    return Fault.http(status, body, retry_after=retry_after, name=reason.lower())


FAULTS: dict[str, Fault] = {
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
    "hang": HANG,
    "malformed_json": MALFORMED_JSON,
    "drop": DROP,
    "expired_url": EXPIRED_URL,
    "moderation": Fault("task_fail", "moderation", msg=MODERATION_REASON),
    "generation_failed": Fault("task_fail", "generation_failed", msg="internal inference error"),
    "canceled": Fault("task_cancel", "canceled"),
    "accept_then_drop": Fault("accept_then_drop", "accept_then_drop"),
}


@dataclass
class SimTask:
    task_id: str
    body: dict[str, Any]
    polls_until_done: int | None
    video: bytes
    status: str = QUEUED
    polls: int = 0
    reason: str = ""
    blob_token: str | None = None


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


class NovitaSimulator(SimServer):
    """Novita's Hailuo-02 API on loopback. Read ``submits``, ``tasks``, ``violations``."""

    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        SUBMIT: frozenset({"accept_then_drop"}),
        QUERY: frozenset({"task_fail", "task_cancel"}),
    }

    def __init__(
        self,
        *,
        api_key: str = "nv-test-key",
        video: bytes | None = None,
        polls_until_done: int | None = 2,
        clock: Clock = time.time,
        url_ttl: float = 3600,
    ) -> None:
        super().__init__(clock=clock, url_ttl=url_ttl)
        self.api_key = api_key
        self.video = media.make_mp4() if video is None else video
        self.polls_until_done = polls_until_done
        self.submits: list[dict[str, Any]] = []
        self.tasks: dict[str, SimTask] = {}

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v3/async/minimax-hailuo-02", self._submit, name=SUBMIT)
        router.add_get("/v3/async/task-result", self._query, name=QUERY)

    # -- test controls

    def complete(self, task_id: str) -> SimTask:
        task = self.tasks[task_id]
        if task.status not in TERMINAL:
            task.status = SUCCEED
            task.blob_token = self.publish(task.video)
        return task

    def fail(self, task_id: str, reason: str = MODERATION_REASON) -> SimTask:
        task = self.tasks[task_id]
        if task.status not in TERMINAL:
            task.status, task.reason = FAILED, reason
        return task

    def cancel(self, task_id: str) -> SimTask:
        task = self.tasks[task_id]
        if task.status not in TERMINAL:
            task.status = CANCELED
        return task

    def webhook_body(self, task_id: str) -> dict[str, Any]:
        """The V3 webhook event: the task-result reply under ``payload``."""
        return {"event_type": "ASYNC_TASK_RESULT", "payload": _reply(self, self.tasks[task_id])}

    # -- handlers

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = recorded(request).json
        problems = json_body_problems(request, body)
        if not problems:
            problems = schema_errors(SCHEMA, body) + rule_problems(body)
        self.violate(SUBMIT, problems)
        fault = self.faults.pop(SUBMIT)
        if fault is not None and fault.kind != "accept_then_drop":
            return await self.answer_generic(request, fault)
        if denied := self._check_auth(request):
            return denied
        if problems:
            return web.json_response(
                error_body(400, "INVALID_REQUEST_BODY", problems[0]), status=400
            )
        task = SimTask(str(uuid.uuid4()), body, self.polls_until_done, self.video)
        self.tasks[task.task_id] = task
        self.submits.append(body)
        if fault is not None:
            return drop_connection(request)
        return web.json_response({"task_id": task.task_id})

    async def _query(self, request: web.Request) -> web.StreamResponse:
        fault = self.faults.pop(QUERY)
        if fault is not None and fault.kind not in ("task_fail", "task_cancel"):
            return await self.answer_generic(request, fault)
        if denied := self._check_auth(request):
            return denied
        task = self.tasks.get(request.query.get("task_id", ""))
        if task is None:
            # [INFERRED] the reply for an unknown task is undocumented.
            reply = error_body(404, "TASK_NOT_FOUND", "task not found")
            return web.json_response(reply, status=404)
        if fault is not None and fault.kind == "task_fail":
            self.fail(task.task_id, fault.msg)
        elif fault is not None:
            self.cancel(task.task_id)
        self._advance(task)
        return web.json_response(_reply(self, task))

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return web.json_response(error_body(401, "FAILED_TO_AUTH", "missing key"), status=401)
        if header.removeprefix("Bearer ").strip() != self.api_key:
            return web.json_response(
                error_body(403, "INVALID_API_KEY", "invalid api key"), status=403
            )
        return None

    def _advance(self, task: SimTask) -> None:
        if task.status in TERMINAL:
            return
        task.polls += 1
        if task.polls_until_done is not None and task.polls > task.polls_until_done:
            self.complete(task.task_id)
        elif task.polls > 1:
            task.status = PROCESSING


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
            "eta": 0 if task.status in TERMINAL else 120,
            "progress_percent": progress if task.status != FAILED else 0,
        },
        "images": [],
        "videos": videos,
        "extra": {"seed": "0", "debug_info": {}},
    }
