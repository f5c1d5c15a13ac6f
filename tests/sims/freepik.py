"""Loopback simulator of Freepik's MiniMax Hailuo-02 endpoints (providers.md §1, seed 000).

Routes (``base_url`` is like ``https://api.freepik.com``):
  POST /v1/ai/image-to-video/minimax-hailuo-02-{768p,1080p}            submit
  GET  /v1/ai/image-to-video/minimax-hailuo-02-{768p,1080p}/{task_id}  CREATED -> IN_PROGRESS
                                                                       -> COMPLETED|FAILED
  GET  /download/<uuid>/output.mp4?Expires=&Signature=                 the "CDN", no key

Behaviours from the docs that adapters get wrong: the key is the ``x-freepik-api-key``
header (``x-magnific-api-key`` on the rebranded host), not ``Authorization``; there is no
resolution field, the tier is the path, and a task is only found on its own tier;
1080p takes 6 s only; every body is checked against the exported schemas with anyOf
semantics (an image body against the i2v one). ``retire("768p")`` makes that tier's
paths 404, as one third party says happened. FAILED carries no reason (none is
documented), so a moderation refusal looks like any other failure here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
T2V_SCHEMA = "freepik.hailuo02_768p.t2v.json"
I2V_SCHEMA = "freepik.hailuo02_768p.i2v.json"
TIERS = ("768p", "1080p")
FREEPIK_HEADER = "x-freepik-api-key"


def message(text: str) -> dict[str, str]:
    return {"message": text}


FAULTS: dict[str, Fault] = {
    **COMMON_FAULTS,
    "http_400": Fault.http(400, message("Parameter 'prompt' is not valid")),
    "http_401": Fault.http(401, message("Invalid API key")),
    # [UNKNOWN] bodies: third-party code handles 402 (credits) and 429; these are guesses.
    "http_402": Fault.http(402, message("Insufficient credits")),
    "http_429": Fault.http(429, message("Too Many Requests"), retry_after=3),
    "http_500": Fault.http(500, message("Internal Server Error")),
    "http_502": Fault.http(502, message("Bad Gateway")),
    "http_503": Fault.http(503, message("Service Unavailable. Please try again later.")),
    "http_503_rate": Fault.http(503, message("Rate limit exceeded"), name="http_503_rate"),
    "generation_failed": Fault("task_fail", "generation_failed"),
    # No moderation signal is documented: a refused video is a plain FAILED.
    "moderation": Fault("task_fail", "moderation"),
}


@dataclass
class SimTask(BaseTask):
    status: str = "CREATED"
    tier: str = "768p"  # a task is only found on its own tier


def rule_problems(tier: str, body: dict[str, Any]) -> list[str]:
    """Documented rules the exported schemas cannot express."""
    problems = []
    if tier == "1080p" and body.get("duration", 6) != 6:
        problems.append("1080P only supports 6 seconds")
    if "last_frame_image" in body and "first_frame_image" not in body:
        problems.append("last_frame_image belongs to the image-to-video body only")
    for key in ("first_frame_image", "last_frame_image"):
        if key in body:
            # "URL of the image or base64 encoding of the image"; JPG/JPEG/PNG only.
            problems += image_ref_problems(
                key, body[key], formats=("jpeg", "png"), data_url=False, raw_base64=True
            )
    hook = body.get("webhook_url")
    if hook is not None and not (
        isinstance(hook, str) and hook.startswith(("https://", "http://"))
    ):
        problems.append("webhook_url is not an http(s) URL")
    return problems + camera_spelling_problems(body.get("prompt"), "english")


class FreepikSimulator(TaskSimulator):
    """Freepik's Hailuo-02 API on loopback. Read ``submits``, ``tasks``, ``violations``."""

    API_KEY = "fp-test-key"
    URL_TTL = 3600
    TERMINAL = ("COMPLETED", "FAILED")
    DONE, RUNNING = "COMPLETED", "IN_PROGRESS"
    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        SUBMIT: frozenset({"accept_then_drop"}),
        QUERY: frozenset({"task_fail"}),
    }
    SECRET_HEADERS: ClassVar[frozenset[str]] = frozenset(
        {"authorization", FREEPIK_HEADER, "x-magnific-api-key"}
    )

    def __init__(self, *, key_header: str = FREEPIK_HEADER, **options: Any) -> None:
        super().__init__(**options)
        self.key_header = key_header
        self.retired: set[str] = set()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        base = "/v1/ai/image-to-video/minimax-hailuo-02-{tier}"
        router.add_post(base, self._submit, name=SUBMIT)
        router.add_get(base + "/{task_id}", self._query, name=QUERY)

    # -- test controls

    def retire(self, tier: str) -> None:
        """Make every path of ``tier`` answer 404, like a retired endpoint."""
        self.retired.add(tier)

    def fail(self, task_id: str) -> SimTask:
        return self.end(task_id, "FAILED")

    def webhook_body(self, task_id: str) -> dict[str, Any]:
        """What Freepik POSTs to ``webhook_url``: the GET reply without the ``data`` field."""
        return _task_body(self, self.tasks[task_id])

    def signed_webhook(
        self, task_id: str, secret: str, *, webhook_id: str = "msg_1", timestamp: int = 0
    ) -> tuple[dict[str, str], bytes]:
        """Headers and raw body of a webhook signed as providers.md §1 describes."""
        raw = json.dumps(self.webhook_body(task_id)).encode()
        stamp = str(timestamp or int(self.clock()))
        digest = hmac.new(secret.encode(), f"{webhook_id}.{stamp}.".encode() + raw, hashlib.sha256)
        sig = base64.b64encode(digest.digest()).decode()
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": stamp,
            "webhook-signature": f"v1,bm90LXRoaXMtb25l v1,{sig}",
        }
        return headers, raw

    # -- handlers

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if not self._tier_served(request):
            return web.json_response(message("Not Found"), status=404)
        return await super()._submit(request)

    async def _query(self, request: web.Request) -> web.StreamResponse:
        if not self._tier_served(request):
            return web.json_response(message("Not Found"), status=404)
        return await self._answer_query(request, QUERY, request.match_info["task_id"])

    def _tier_served(self, request: web.Request) -> bool:
        tier = request.match_info["tier"]
        return tier in TIERS and tier not in self.retired

    def _submit_problems(self, request: web.Request, body: Any) -> list[str]:
        problems = json_body_problems(request, body)
        if problems:
            return problems
        schema = I2V_SCHEMA if "first_frame_image" in body else T2V_SCHEMA
        return schema_errors(schema, body) + rule_problems(request.match_info["tier"], body)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get(self.key_header)
        if key is None:
            return web.json_response(message("Missing API key"), status=401)
        if key != self.api_key:
            return web.json_response(message("Invalid API key"), status=401)
        return None

    def _refuse(self, problems: list[str]) -> web.Response:
        invalid = [{"name": "body", "reason": p} for p in problems]
        return web.json_response(
            {"message": "Your request parameters didn't validate.", "invalid_params": invalid},
            status=400,
            content_type="application/problem+json",
        )

    def _new_task(self, request: web.Request, body: dict[str, Any]) -> SimTask:
        tier = request.match_info["tier"]
        return SimTask(str(uuid.uuid4()), body, self.polls_until_done, self.video, tier=tier)

    def _accepted(self, task: SimTask) -> web.Response:
        return web.json_response({"data": {"task_id": task.task_id, "status": task.status}})

    def _lookup(self, request: web.Request, task_id: str) -> SimTask | web.Response:
        task = self.tasks.get(task_id)
        if task is None or task.tier != request.match_info["tier"]:
            # [INFERRED] a task is only found on the tier it was created on.
            return web.json_response(message("Not Found"), status=404)
        return task

    def _task_fault(self, task: SimTask, fault: Fault) -> None:
        self.fail(task.task_id)

    def _query_reply(self, task: SimTask, endpoint: str) -> dict[str, Any]:
        return {"data": _task_body(self, task)}


def _task_body(sim: FreepikSimulator, task: SimTask) -> dict[str, Any]:
    """``{"task_id", "status", "generated"}``; a fresh signed URL on each COMPLETED reply."""
    generated = []
    if task.status == "COMPLETED" and task.blob_token is not None:
        generated = [sim.signed_url(task.blob_token)]
    return {"task_id": task.task_id, "status": task.status, "generated": generated}
