"""Novita (providers.md §4): V3 async task, ``TASK_STATUS_*`` words, the URL in the reply.

Two traps are handled here. HTTP 403 means both a wrong key (``INVALID_API_KEY``) and
an empty account (``NOT_ENOUGH_BALANCE``), so the body's ``reason`` decides; the error
body's exact shape is undocumented, so ``reason`` is looked for at the top level and
under ``error``. And ``videos[0].video_url`` lives one hour, so ``result_url`` asks
for the task again and returns the URL of that fresh reply.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

from hailuo.model.camera import Spelling
from hailuo.model.capability import (
    ALL_MODES,
    BOTH_OPTIONS,
    DEFAULT_RULES,
    HOUR,
    Offer,
    ProviderCapability,
    WireNames,
    wire_values,
)
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase, PreparedInput, SubmitReceipt, TaskState
from providers.http import BearerAdapter, Reply, classify_status, whole_number
from providers.wire import request_body

log = logging.getLogger(__name__)

NAME = "novita"

#: What this provider accepts and how it spells a request, declared once here and read by the body
#: builder below; ``providers.registry`` collects it. Seed 003; the endpoint is the model;
#: video_url_ttl 3600, a re-query may or may not renew the URL.
CAPABILITY = ProviderCapability(
    name=NAME,
    label="Novita",
    models=frozenset({"MiniMax-Hailuo-02"}),
    modes=ALL_MODES,
    resolutions=MappingProxyType(
        {"768P": Offer(frozenset({6, 10})), "1080P": Offer(frozenset({6}))}
    ),
    options=BOTH_OPTIONS,
    images=DEFAULT_RULES,
    spelling=WireNames(
        camera=Spelling.ENGLISH,
        model=None,
        resolution="resolution",
        resolution_values=wire_values("768P", "1080P"),
        duration="duration",
        prompt="prompt",
        first_frame="image",
        last_frame="end_image",
        prompt_optimizer="enable_prompt_expansion",
        fast_pretreatment="fast_pretreatment",
        callback=None,
        image_encoding="data_url",
        required=frozenset({"prompt"}),
    ),
    result_lifetime=HOUR,
    # No price of this provider is in the project's references (providers.md, the seeds)
    # as of 2026-12-07: unknown until a server sets its own (``/hailuo-admin price``).
    prices=MappingProxyType({}),
)
SUBMIT_PATH = "/v3/async/minimax-hailuo-02"
QUERY_PATH = "/v3/async/task-result"

#: Novita serves 768P (6/10 s) and 1080P (6 s); no 512P.
RESOLUTION_DURATIONS = {"768P": frozenset({6, 10}), "1080P": frozenset({6})}

#: ``prompt`` is required (1-2000) even for image-to-video; sent when the member gave none.
DEFAULT_PROMPT = "Animate this image with natural motion."

#: Task status words (official SDK enum) -> common phase. ``*_CANCELED`` is read as
#: FAILED by :func:`_phase` (one third-party schema lists TASK_STATUS_CANCELED).
_PHASES = {
    "TASK_STATUS_QUEUED": Phase.QUEUED,
    "TASK_STATUS_PROCESSING": Phase.RUNNING,
    "TASK_STATUS_SUCCEED": Phase.SUCCEEDED,
    "TASK_STATUS_FAILED": Phase.FAILED,
}

#: Error ``reason`` names (docs.jiekou.ai copy of Novita's error page) -> kind.
REASON_KINDS: dict[str, ProviderErrorKind] = {
    "INVALID_API_KEY": ProviderErrorKind.AUTH,  # 403
    "FAILED_TO_AUTH": ProviderErrorKind.AUTH,  # 401
    "ACCESS_DENY": ProviderErrorKind.AUTH,  # 403: model access / identity verification
    "NOT_ENOUGH_BALANCE": ProviderErrorKind.BALANCE,  # 403, not 402
    "INVALID_REQUEST_BODY": ProviderErrorKind.INVALID_REQUEST,  # 400
    "RATE_LIMIT_EXCEEDED": ProviderErrorKind.RATE_LIMITED,  # 429
    "SERVICE_NOT_AVAILABLE": ProviderErrorKind.UNAVAILABLE,  # 503
    "MODEL_NOT_FOUND": ProviderErrorKind.UNAVAILABLE,  # 404: this provider lacks the model
}

#: [UNKNOWN] moderation ``task.reason`` strings: a failed task whose reason holds one of
#: these is a content refusal; every reason is logged so the list can be made exact.
MODERATION_HINTS = (
    "sensitive",
    "nsfw",
    "moderat",
    "content policy",
    "content_policy",
    "safety",
    "inappropriate",
    "prohibited",
    "violat",
    "censor",
)


def looks_like_moderation(text: str) -> bool:
    lowered = text.lower()
    return any(hint in lowered for hint in MODERATION_HINTS)


def _phase(raw: str) -> Phase | None:
    if raw.endswith(("_CANCELED", "_CANCELLED")):
        return Phase.FAILED
    return _PHASES.get(raw)


class NovitaProvider(BearerAdapter):
    name = NAME

    # -- submit

    def submit_body(self, job: PreparedInput) -> dict[str, Any]:
        # No callback: the hailuo-02 page does not list ``extra.webhook`` (providers.md §4).
        return request_body(job, CAPABILITY.spelling, neutral_prompt=DEFAULT_PROMPT)

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        spec = job.spec
        if spec.duration not in RESOLUTION_DURATIONS.get(spec.resolution, frozenset()):
            detail = f"{spec.resolution} {spec.duration}s is not offered"
            raise self.http.error(ProviderErrorKind.INVALID_REQUEST, "unsupported", detail)
        reply = await self.http.request(
            "POST", SUBMIT_PATH, json_body=self.submit_body(job), idempotent=False
        )
        if not 200 <= reply.status < 300:
            raise self._status_error(reply)
        task_id = reply.body.get("task_id") if isinstance(reply.body, dict) else None
        if not task_id:
            raise self.http.error(
                ProviderErrorKind.UNKNOWN_OUTCOME, None, "2xx reply without task_id"
            )
        return SubmitReceipt(task_id=str(task_id), meta={"task_id": str(task_id)})

    # -- follow

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        reply = await self.http.request(
            "GET", QUERY_PATH, params={"task_id": task_id}, idempotent=True
        )
        if not 200 <= reply.status < 300:
            raise self._status_error(reply)
        return self.task_state(self.http.object_of(reply))

    def task_state(self, data: dict[str, Any]) -> TaskState:
        """Read a task-result reply, or a webhook ``{"event_type", "payload": <same>}``."""
        if isinstance(data.get("payload"), dict) and "task" not in data:
            data = data["payload"]
        task = data.get("task")
        if not isinstance(task, dict):
            raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "reply without 'task'")
        raw = str(task.get("status", ""))
        phase = _phase(raw)
        if phase is None:
            return self._unknown_status(raw)
        if phase is Phase.SUCCEEDED:
            url = _first_video_url(data.get("videos"))
            if url is None:
                raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "SUCCEED without video")
            return TaskState(phase=phase, locator=url, raw_status=raw)
        if phase is Phase.FAILED:
            reason = self._clip(str(task.get("reason") or ""))
            kind = ProviderErrorKind.UNAVAILABLE
            if raw == "TASK_STATUS_FAILED" and looks_like_moderation(reason):
                kind = ProviderErrorKind.MODERATION
            # [UNKNOWN] reason strings: always log them (no secret, no prompt in them).
            log.warning("novita: task %s failed (%s): %r", raw, kind.value, reason)
            failure = self.http.error(kind, None, f"{raw}: {reason}")
            return TaskState(phase=phase, failure=failure, raw_status=raw)
        progress = whole_number(task.get("progress_percent"))
        return TaskState(phase=phase, progress=progress, raw_status=raw)

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        """The URL from a fresh query (it lives one hour); the stored one if that fails."""
        return await self._requery(locator, meta)

    # -- errors

    def _status_error(self, reply: Reply) -> ProviderError:
        """The body's ``reason`` first (403 is both a bad key and no balance), then status."""
        reason, message = self._reason(reply)
        kind = REASON_KINDS.get(reason or "")
        if reply.status == 429:
            kind = ProviderErrorKind.RATE_LIMITED
        elif kind is None:
            kind = classify_status(reply.status)
            if reply.status in (401, 402, 403) and "balance" in message.lower():
                kind = ProviderErrorKind.BALANCE
            self._note(
                f"http:{reply.status}:{reason}",
                "novita: HTTP %d with unknown reason %r: %s",
                reply.status,
                reason,
                message,
            )
        code = reason or str(reply.status)
        detail = f"HTTP {reply.status} {code}: {message}"
        return self.http.error(kind, code, detail, reply.retry_after())

    def _reason(self, reply: Reply) -> tuple[str | None, str]:
        """``reason`` and ``message`` from ``{"reason", "message"}`` or ``{"error": {...}}``."""
        body = reply.body
        if not isinstance(body, dict):
            return None, self._clip(reply.text)
        holder = body
        if not isinstance(body.get("reason"), str) and isinstance(body.get("error"), dict):
            holder = body["error"]
            self._note("error-nested", "novita: error body nests its reason under 'error'")
        reason = holder.get("reason")
        if not isinstance(reason, str) and isinstance(holder.get("code"), str):
            reason = holder["code"]
        message = holder.get("message") or body.get("message") or ""
        name = reason.strip().upper() if isinstance(reason, str) else ""
        return name or None, self._clip(str(message))


def _first_video_url(videos: Any) -> str | None:
    if isinstance(videos, list) and videos and isinstance(videos[0], dict):
        url = videos[0].get("video_url")
        if isinstance(url, str) and url:
            return url
    return None


#: The class ``providers.registry`` builds for this provider.
ADAPTER = NovitaProvider
