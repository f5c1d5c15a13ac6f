"""Loopback simulator of odkkk (EvoLink white-label) for Hailuo-02 (providers.md §3, seed 002).

Routes, under the ``/apiv1`` prefix the real base URL carries (``api_base`` has it):
  POST /apiv1/v1/videos/generations      submit -> {"id": "task-unified-...", "status": "pending"}
  GET  /apiv1/v1/tasks/{task_id}         pending -> processing (progress) -> completed
                                         (results[0]) | failed (error{code, message})
  GET  /download/<uuid>/output.mp4?Expires=&Signature=   the "CDN", no key (24 h TTL)

Behaviours from the docs that adapters get wrong: the number of ``image_urls`` is the
mode; ``quality`` is lower case; HTTP errors are ``{"error": {"code": <int>, "message",
"type"}}`` (402 ``insufficient_quota_error``, 429 ``rate_limit_error``) while a failed
task's ``error.code`` is a *string* such as ``content_policy_violation``; seed 002 also
types it as an integer, and a fault here sends one.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
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
SCHEMA = "odkkk.json"
PREFIX = "/apiv1"
MODEL = "MiniMax-Hailuo-02"
MODERATION_ERROR = {
    "code": "content_policy_violation",
    "message": "Content policy violation.\nYour request was blocked by safety filters...",
}


def error_body(status: int, etype: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "type": etype, **extra}}


def http_error(status: int, etype: str, message: str, *, retry_after: int | None = None) -> Fault:
    return Fault.http(status, error_body(status, etype, message), retry_after=retry_after)


FAULTS: dict[str, Fault] = {
    **COMMON_FAULTS,
    "http_400": http_error(400, "invalid_request_error", "invalid parameters"),
    "http_401": http_error(401, "authentication_error", "Invalid API key"),
    "http_402": http_error(402, "insufficient_quota_error", "Insufficient quota, please recharge"),
    "http_429": http_error(429, "rate_limit_error", "Too many requests", retry_after=2),
    "http_500": http_error(500, "internal_server_error", "internal error"),
    "http_502": http_error(502, "upstream_error", "upstream error"),
    "http_503": http_error(503, "service_unavailable_error", "service unavailable"),
    "moderation": Fault("task_fail", "moderation", body=MODERATION_ERROR),
    "generation_failed": Fault(
        "task_fail",
        "generation_failed",
        body={"code": "generation_failed_no_content", "message": "no content generated"},
    ),
    # The image was not processed (its documented ``image_urls`` take URLs; a data URL
    # may be refused): the task fails with this client-error code.
    "image_processing": Fault(
        "task_fail",
        "image_processing",
        body={"code": "image_processing_error", "message": "Failed to process the image"},
    ),
    "generation_failed_int": Fault(
        "task_fail", "generation_failed_int", body={"code": 500, "message": "generation failed"}
    ),
}


@dataclass
class SimTask(BaseTask):
    status: str = "pending"
    created: int = 0
    error: dict[str, Any] = field(default_factory=dict)


def rule_problems(body: dict[str, Any]) -> list[str]:
    problems = []
    images = body.get("image_urls") or []
    quality, duration = body.get("quality", "768p"), body.get("duration", 6)
    if quality == "1080p" and duration != 6:
        problems.append("1080p supports 6 s only")
    if quality == "512p" and len(images) != 1:
        problems.append("512p is image-to-video (one image) only")
    if not images and not body.get("prompt"):
        problems.append("prompt is required for text-to-video")
    for i, ref in enumerate(images if isinstance(images, list) else []):
        # [UNKNOWN] whether data URLs are accepted; URLs and data:image URLs pass here.
        problems += image_ref_problems(f"image_urls[{i}]", ref)
    return problems + camera_spelling_problems(body.get("prompt"), "english")


class OdkkkSimulator(TaskSimulator):
    """odkkk on loopback. Give adapters ``api_base`` (with ``/apiv1``), not ``base_url``."""

    API_KEY = "od-test-key"
    URL_TTL = 24 * 3600
    TERMINAL = ("completed", "failed")
    DONE, RUNNING = "completed", "processing"
    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        SUBMIT: frozenset({"accept_then_drop"}),
        QUERY: frozenset({"task_fail"}),
    }

    @property
    def api_base(self) -> str:
        return self.base_url + PREFIX

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(f"{PREFIX}/v1/videos/generations", self._submit, name=SUBMIT)
        router.add_get(PREFIX + "/v1/tasks/{task_id}", self._query, name=QUERY)

    # -- test controls

    def fail(self, task_id: str, error: dict[str, Any] | None = None) -> SimTask:
        return self.end(task_id, "failed", error=dict(error or MODERATION_ERROR))

    def webhook_body(self, task_id: str) -> dict[str, Any]:
        """EvoLink's callback body is identical to the task reply."""
        return _task_body(self, self.tasks[task_id])

    # -- handlers

    async def _query(self, request: web.Request) -> web.StreamResponse:
        return await self._answer_query(request, QUERY, request.match_info["task_id"])

    def _submit_problems(self, request: web.Request, body: Any) -> list[str]:
        return json_body_problems(request, body) or (
            schema_errors(SCHEMA, body) + rule_problems(body)
        )

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") != self.api_key:
            message = "Unauthorized, invalid or expired token"
            return web.json_response(error_body(401, "authentication_error", message), status=401)
        return None

    def _refuse(self, problems: list[str]) -> web.Response:
        reply = error_body(400, "invalid_request_error", problems[0], param="body")
        return web.json_response(reply, status=400)

    def _new_task(self, request: web.Request, body: dict[str, Any]) -> SimTask:
        created = int(self.clock())
        alphabet = string.ascii_lowercase + string.digits
        suffix = "".join(secrets.choice(alphabet) for _ in range(8))
        task_id = f"task-unified-{created}-{suffix}"
        return SimTask(task_id, body, self.polls_until_done, self.video, created=created)

    def _accepted(self, task: SimTask) -> web.Response:
        return web.json_response(_task_body(self, task))

    def _lookup(self, request: web.Request, task_id: str) -> SimTask | web.Response:
        if not task_id.startswith("task-unified-"):
            reply = error_body(
                400,
                "invalid_request_error",
                "Invalid task ID format, must start with 'task-unified-'",
                param="task_id",
            )
            reply["error"]["code"] = "invalid_task_id"
            return web.json_response(reply, status=400)
        task = self.tasks.get(task_id)
        if task is None:
            return web.json_response(
                error_body(404, "not_found_error", "task not found"), status=404
            )
        return task

    def _task_fault(self, task: SimTask, fault: Fault) -> None:
        self.fail(task.task_id, fault.body)

    def _query_reply(self, task: SimTask, endpoint: str) -> dict[str, Any]:
        return _task_body(self, task)


def _task_body(sim: OdkkkSimulator, task: SimTask) -> dict[str, Any]:
    total = task.polls_until_done or 10
    progress = {"completed": 100, "failed": 0, "pending": 0}.get(
        task.status, min(99, 100 * task.polls // (total + 1))
    )
    body: dict[str, Any] = {
        "created": task.created,
        "id": task.task_id,
        "model": MODEL,
        "object": "video.generation.task",
        "progress": progress,
        "status": task.status,
        "task_info": {"can_cancel": task.status == "pending"},
        "type": "video",
    }
    if task.status == "completed" and task.blob_token is not None:
        body["results"] = [sim.signed_url(task.blob_token)]
    if task.status == "failed":
        body["error"] = task.error
    return body
