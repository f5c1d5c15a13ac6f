"""odkkk, a white-label of EvoLink (providers.md §3): unified video generations and tasks.

The number of ``image_urls`` picks the mode (0/1/2 = text / image / first+last frame),
``quality`` is the lower-case resolution, and the task reply carries a real
``progress`` and the video URL (valid 24 h) in ``results[0]``. ``error.code`` is a
string on task failures and an integer on HTTP errors (seed 002 types it both ways),
so both are read. The base URL carries the ``/apiv1`` prefix; paths start at ``/v1``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hailuo.model.camera import Spelling
from hailuo.model.capability import (
    ALL_MODES,
    BOTH_OPTIONS,
    DEFAULT_RULES,
    HOUR,
    IMAGE_ONLY,
    Offer,
    ProviderCapability,
    WireNames,
    wire_values,
)
from hailuo.model.errors import UNSUPPORTED_IMAGE, ProviderError, ProviderErrorKind
from hailuo.model.provider import TASK_FAILURE_KINDS, Phase, PreparedInput, SubmitReceipt, TaskState
from hailuo.model.spec import RESOLUTIONS
from providers.http import BearerAdapter, Reply, classify_status, whole_number
from providers.wire import request_body

NAME = "odkkk"

#: What this provider accepts and how it spells a request, declared once here and read by the body
#: builder below; ``providers.registry`` collects it. Seed 002; results[0] is the file itself,
#: "valid for 24 hours", never renewed.
CAPABILITY = ProviderCapability(
    name=NAME,
    label="odkkk",
    models=frozenset({"MiniMax-Hailuo-02"}),
    modes=ALL_MODES,
    resolutions=MappingProxyType(
        {
            "512P": Offer(frozenset({6, 10}), IMAGE_ONLY),
            "768P": Offer(frozenset({6, 10})),
            "1080P": Offer(frozenset({6})),
        }
    ),
    options=BOTH_OPTIONS,
    images=DEFAULT_RULES,
    spelling=WireNames(
        camera=Spelling.ENGLISH,
        model="model",
        resolution="quality",
        resolution_values=wire_values(*RESOLUTIONS, lower=True),
        duration="duration",
        prompt="prompt",
        first_frame="image_urls[0]",
        last_frame="image_urls[1]",
        prompt_optimizer="model_params.prompt_optimizer",
        fast_pretreatment="model_params.fast_pretreatment",
        callback=None,
        image_encoding="data_url",
        required=frozenset({"model"}),
    ),
    result_lifetime=24 * HOUR,
    fresh_url=False,
    # No price of this provider is in the project's references (providers.md, the seeds)
    # as of 2026-12-07: unknown until a server sets its own (``/hailuo-admin price``).
    prices=MappingProxyType({}),
    # Seed 002 documents ``image_urls`` as URLs; a data URL may be refused
    # (``image_processing_error``): served from the bot when HAILUO_PUBLIC_URL is set.
    images_as_url=True,
)
SUBMIT_PATH = "/v1/videos/generations"
TASK_PATH = "/v1/tasks/{task_id}"

#: Task status words -> common phase; EvoLink also calls back on "cancelled".
_PHASES = {
    "pending": Phase.QUEUED,
    "processing": Phase.RUNNING,
    "completed": Phase.SUCCEEDED,
    "failed": Phase.FAILED,
    "cancelled": Phase.FAILED,
    "canceled": Phase.FAILED,
}

#: ``error.code`` strings (task failures and HTTP errors; EvoLink error-codes page) -> kind.
ERROR_CODE_KINDS: dict[str, ProviderErrorKind] = {
    "content_policy_violation": ProviderErrorKind.MODERATION,
    "invalid_parameters": ProviderErrorKind.INVALID_REQUEST,
    # The image as sent (a data URL: its documented ``image_urls`` take URLs) could not
    # be processed: this provider cannot take it, the next one that takes images may.
    "image_processing_error": ProviderErrorKind.UNSUPPORTED,
    "image_dimension_mismatch": ProviderErrorKind.INVALID_REQUEST,
    "request_cancelled": ProviderErrorKind.UNAVAILABLE,
    "generation_failed_no_content": ProviderErrorKind.UNAVAILABLE,
    "service_error": ProviderErrorKind.UNAVAILABLE,
    "generation_timeout": ProviderErrorKind.UNAVAILABLE,
    "resource_exhausted": ProviderErrorKind.UNAVAILABLE,
    "quota_exceeded": ProviderErrorKind.RATE_LIMITED,
    "service_unavailable": ProviderErrorKind.UNAVAILABLE,
    "resource_not_found": ProviderErrorKind.NOT_FOUND,
    "invalid_task_id": ProviderErrorKind.NOT_FOUND,
    "unknown_error": ProviderErrorKind.UNAVAILABLE,
    "insufficient_quota": ProviderErrorKind.BALANCE,
}

#: ``error.type`` of an HTTP error (EvoLink's table) -> kind.
ERROR_TYPE_KINDS: dict[str, ProviderErrorKind] = {
    "invalid_request_error": ProviderErrorKind.INVALID_REQUEST,
    "authentication_error": ProviderErrorKind.AUTH,
    "insufficient_quota_error": ProviderErrorKind.BALANCE,
    "permission_error": ProviderErrorKind.AUTH,
    "not_found_error": ProviderErrorKind.NOT_FOUND,
    "request_too_large_error": ProviderErrorKind.INVALID_REQUEST,
    "rate_limit_error": ProviderErrorKind.RATE_LIMITED,
    "internal_server_error": ProviderErrorKind.UNAVAILABLE,
    "upstream_error": ProviderErrorKind.UNAVAILABLE,
    "service_unavailable_error": ProviderErrorKind.UNAVAILABLE,
}


class OdkkkProvider(BearerAdapter):
    name = NAME

    # -- submit

    def submit_body(self, job: PreparedInput) -> dict[str, Any]:
        # No callback_url: the Hailuo-02 schema of seed 002 has none (providers.md §3).
        return request_body(job, CAPABILITY.spelling)

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        reply = await self.http.request(
            "POST", SUBMIT_PATH, json_body=self.submit_body(job), idempotent=False
        )
        if not 200 <= reply.status < 300:
            raise self._status_error(reply)
        task_id = reply.body.get("id") if isinstance(reply.body, dict) else None
        if not task_id:
            raise self.http.error(ProviderErrorKind.UNKNOWN_OUTCOME, None, "2xx reply without id")
        return SubmitReceipt(task_id=str(task_id))

    # -- follow

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        path = TASK_PATH.format(task_id=task_id)
        reply = await self.http.request("GET", path, idempotent=True)
        if not 200 <= reply.status < 300:
            raise self._status_error(reply)
        return self.task_state(self.http.object_of(reply))

    def task_state(self, data: dict[str, Any]) -> TaskState:
        """Read a task reply, or a callback body (identical, per EvoLink's docs)."""
        raw = str(data.get("status", ""))
        phase = _PHASES.get(raw.lower())
        if phase is None:
            return self._unknown_status(raw)
        if phase is Phase.SUCCEEDED:
            url = _first_result(data.get("results"))
            if url is None:
                raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "completed, no results")
            return TaskState(phase=phase, locator=url, raw_status=raw)
        if phase is Phase.FAILED:
            kind, code, message = self._task_failure(data.get("error"))
            failure = self.http.error(kind, code, f"{raw}: {message}")
            return TaskState(phase=phase, failure=failure, raw_status=raw)
        progress = whole_number(data.get("progress"))
        return TaskState(phase=phase, progress=progress, raw_status=raw)

    def _task_failure(self, error: Any) -> tuple[ProviderErrorKind, str | None, str]:
        """``error{code, message}`` of a failed task; ``code`` a string or an integer."""
        if not isinstance(error, dict):
            return ProviderErrorKind.UNAVAILABLE, None, "no error object"
        code, message = error.get("code"), self._clip(str(error.get("message") or ""))
        if isinstance(code, str):
            kind = ERROR_CODE_KINDS.get(code.strip().lower())
            if kind is None:
                self._note(f"task-code:{code}", "odkkk: unknown task error code %r", code[:60])
        elif isinstance(code, int) and not isinstance(code, bool):
            self._note("task-code-int", "odkkk: task error with an integer code %d", code)
            kind = classify_status(code)
        else:
            kind = None
        if "content policy" in message.lower() or "safety filter" in message.lower():
            kind = ProviderErrorKind.MODERATION
        if kind is ProviderErrorKind.UNSUPPORTED:
            return kind, UNSUPPORTED_IMAGE, message
        if kind not in TASK_FAILURE_KINDS:
            kind = ProviderErrorKind.UNAVAILABLE
        return kind, (str(code) if code is not None else None), message

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        """``results[0]`` is the file itself, valid 24 h: no second call needed."""
        return locator

    # -- errors

    def _status_error(self, reply: Reply) -> ProviderError:
        """``{"error": {code, message, type}}``: status 402/429 first, then code, type."""
        error = reply.body.get("error") if isinstance(reply.body, dict) else None
        if not isinstance(error, dict):
            error = {}
            self._note(f"http-shape:{reply.status}", "odkkk: HTTP %d without 'error'", reply.status)
        code, etype = error.get("code"), error.get("type")
        message = self._clip(str(error.get("message") or reply.text))
        kind: ProviderErrorKind | None = None
        if reply.status == 429:
            kind = ProviderErrorKind.RATE_LIMITED
        elif reply.status == 402:
            kind = ProviderErrorKind.BALANCE
        if kind is None and isinstance(code, str):
            kind = ERROR_CODE_KINDS.get(code.strip().lower())
        if kind is None and isinstance(etype, str):
            kind = ERROR_TYPE_KINDS.get(etype)
        if kind is None:
            kind = classify_status(reply.status)
        provider_code = str(code) if code not in (None, "") else (etype or str(reply.status))
        if kind is ProviderErrorKind.UNSUPPORTED:
            provider_code = UNSUPPORTED_IMAGE
        detail = f"HTTP {reply.status} {etype or ''}: {message}"
        return self.http.error(kind, str(provider_code), detail, reply.retry_after())


def _first_result(results: Any) -> str | None:
    if isinstance(results, list) and results:
        first = results[0]
        if isinstance(first, dict):
            first = first.get("url")
        if isinstance(first, str) and first:
            return first
    return None


#: The class ``providers.registry`` builds for this provider.
ADAPTER = OdkkkProvider
