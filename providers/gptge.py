"""api.gpt.ge (V-API), a MiniMax pass-through (providers.md §5, seed 004).

The body is MiniMax's, with ``duration`` and ``resolution`` always sent (seed 004 marks
them required) and the camera commands in Chinese. The query path is not settled:
``GET /task/{task_id}`` is documented, with an example in MiniMax's native shape
(top-level ``status``/``file_id``/``base_resp``) and a field table describing a wrapper
(``code``, ``data.status``, ``data.video_url``); both are read. When that path answers
404 the MiniMax-like ``/task/minimax/v1/query/video_generation`` is tried. MiniMax's
``base_resp`` codes pass through and are read with MiniMax's own table; the gateway's
own errors may come OpenAI-style (``{"error": {"message", "type", "code"}}``).
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
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import TASK_FAILURE_KINDS, Phase, PreparedInput, SubmitReceipt, TaskState
from hailuo.model.spec import MODEL_RULES, RESOLUTIONS
from providers.http import BearerAdapter, Reply, classify_status, whole_number
from providers.minimax import (
    BASE_RESP_KINDS,
    base_code,
    base_msg,
    base_resp_checked,
    receipt_of,
    task_state_of,
    video_body,
)

NAME = "gptge"

#: What this provider accepts and how it spells a request, declared once here and read by the body
#: builder below; ``providers.registry`` collects it. Seed 004; MiniMax's files/retrieve passed
#: through, so MiniMax's 9 h (inferred).
CAPABILITY = ProviderCapability(
    name=NAME,
    label="gpt.ge",
    models=frozenset(MODEL_RULES),
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
        camera=Spelling.CHINESE,
        model="model",
        resolution="resolution",
        resolution_values=wire_values(*RESOLUTIONS),
        duration="duration",
        prompt="prompt",
        first_frame="first_frame_image",
        last_frame="last_frame_image",
        prompt_optimizer="prompt_optimizer",
        fast_pretreatment="fast_pretreatment",
        callback="callback_url",
        image_encoding="data_url",
        required=frozenset({"model", "duration", "resolution"}),
    ),
    result_lifetime=9 * HOUR,
    # No price of this provider is in the project's references (providers.md, the seeds)
    # as of 2026-12-07: unknown until a server sets its own (``/hailuo-admin price``).
    prices=MappingProxyType({}),
)
SUBMIT_PATH = "/task/minimax/v1/video_generation"
TASK_PATH = "/task/{task_id}"
FALLBACK_QUERY_PATH = "/task/minimax/v1/query/video_generation"
RETRIEVE_PATH = "/task/minimax/v1/files/retrieve"

#: Status words -> common phase. MiniMax's query words (Preparing/Queueing/Processing/
#: Success/Fail) and its callback words (processing/success/failed) pass through; the
#: page also says "Failed"; the wrapper's words are unknown, so the generic task words
#: of gateways of this kind (NOT_START/SUBMITTED/IN_PROGRESS/SUCCESS/FAILURE) are read too.
_PHASES = {
    "preparing": Phase.QUEUED,
    "queueing": Phase.QUEUED,
    "queued": Phase.QUEUED,
    "not_start": Phase.QUEUED,
    "submitted": Phase.QUEUED,
    "processing": Phase.RUNNING,
    "in_progress": Phase.RUNNING,
    "success": Phase.SUCCEEDED,
    "succeeded": Phase.SUCCEEDED,
    "fail": Phase.FAILED,
    "failed": Phase.FAILED,
    "failure": Phase.FAILED,
}

#: OpenAI-style gateway ``error.code``/``error.type`` values -> kind ([UNKNOWN] for gpt.ge).
GATEWAY_CODE_KINDS: dict[str, ProviderErrorKind] = {
    "invalid_api_key": ProviderErrorKind.AUTH,
    "invalid_token": ProviderErrorKind.AUTH,
    "authentication_error": ProviderErrorKind.AUTH,
    "insufficient_quota": ProviderErrorKind.BALANCE,
    "insufficient_user_quota": ProviderErrorKind.BALANCE,
    "rate_limit_exceeded": ProviderErrorKind.RATE_LIMITED,
    "rate_limit_error": ProviderErrorKind.RATE_LIMITED,
    "content_policy_violation": ProviderErrorKind.MODERATION,
    "sensitive_words_detected": ProviderErrorKind.MODERATION,
}
_BALANCE_WORDS = ("quota", "balance", "insufficient", "余额", "额度")


class GptGeProvider(BearerAdapter):
    name = NAME

    # -- submit

    def submit_body(self, job: PreparedInput) -> dict[str, Any]:
        return video_body(job, CAPABILITY.spelling)

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        reply = await self.http.request(
            "POST", SUBMIT_PATH, json_body=self.submit_body(job), idempotent=False
        )
        if 200 <= reply.status < 300 and not isinstance(reply.body, dict):
            # The body was accepted and the answer is unreadable: the task may exist.
            raise self.http.error(ProviderErrorKind.UNKNOWN_OUTCOME, None, "unreadable 2xx reply")
        return receipt_of(self.http, self._checked(reply))

    # -- follow

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        path = TASK_PATH.format(task_id=task_id)
        reply = await self.http.request("GET", path, idempotent=True)
        if reply.status == 404:
            self._note(
                "fallback", "gptge: %s answered 404; using %s", TASK_PATH, FALLBACK_QUERY_PATH
            )
            reply = await self.http.request(
                "GET", FALLBACK_QUERY_PATH, params={"task_id": task_id}, idempotent=True
            )
        # A base_resp refusal about the task itself is read as MiniMax reads it: it failed.
        return task_state_of(reply, self._checked, self.task_state)

    def task_state(self, data: dict[str, Any]) -> TaskState:
        """Read the native MiniMax shape, the wrapper shape, or a callback body."""
        inner = self._task_object(data)
        raw = str(inner.get("status", ""))
        phase = _PHASES.get(raw.lower())
        if phase is None:
            return self._unknown_status(raw)
        if phase is Phase.SUCCEEDED:
            locator = _locator(inner)
            if locator is None:
                raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "Success without file")
            return TaskState(phase=phase, locator=locator, raw_status=raw)
        if phase is Phase.FAILED:
            code = base_code(inner) or base_code(data)
            message = self._clip(base_msg(inner) or base_msg(data) or _reason(inner))
            kind = BASE_RESP_KINDS.get(code or 0, ProviderErrorKind.UNAVAILABLE)
            if code is None and "sensitive" in message.lower():
                kind = ProviderErrorKind.MODERATION
            if kind not in TASK_FAILURE_KINDS:
                kind = ProviderErrorKind.UNAVAILABLE
            failure = self.http.error(kind, str(code) if code else None, message)
            return TaskState(phase=phase, failure=failure, raw_status=raw)
        return TaskState(phase=phase, progress=_progress(inner.get("progress")), raw_status=raw)

    def _task_object(self, data: dict[str, Any]) -> dict[str, Any]:
        """The object holding ``status``: the reply itself (native) or its ``data`` (wrapper).

        In the wrapper a top-level ``status`` is the gateway's integer return code, so only
        a *string* top-level status marks the native shape.
        """
        if isinstance(data.get("status"), str):
            return data
        inner = data.get("data")
        if isinstance(inner, dict) and "status" in inner:
            self._note(
                "wrapper", "gptge: query reply in the wrapper shape (code=%r)", data.get("code")
            )
            nested = inner.get("data")
            if isinstance(nested, dict) and isinstance(nested.get("status"), str):
                return nested  # a gateway wrapping MiniMax's own reply
            return inner
        raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "no task status in reply")

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        """A wrapper's ``video_url`` as is; a ``file_id`` through files/retrieve (fresh URL)."""
        if locator.startswith(("https://", "http://")):
            return locator
        reply = await self.http.request(
            "GET", RETRIEVE_PATH, params={"file_id": locator}, idempotent=True
        )
        data = self._checked(reply)
        file = data.get("file")
        if not isinstance(file, dict):
            file = {}
        for key in ("download_url", "backup_download_url"):
            url = file.get(key)
            if isinstance(url, str) and url:
                return url
        raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "retrieve without download_url")

    # -- errors

    def _checked(self, reply: Reply) -> dict[str, Any]:
        """The JSON object of a reply, or the ProviderError its status or body means."""
        body = reply.body
        if not 200 <= reply.status < 300 or (isinstance(body, dict) and "error" in body):
            raise self._gateway_error(reply)
        return base_resp_checked(self.http, reply, self._clip)

    def _gateway_error(self, reply: Reply) -> ProviderError:
        """An HTTP error or an ``{"error": {...}}`` body; a MiniMax ``base_resp`` wins."""
        body = reply.body if isinstance(reply.body, dict) else {}
        base = base_code(body)
        error = body.get("error")
        if isinstance(error, dict):
            code, etype = error.get("code"), error.get("type")
            message = self._clip(str(error.get("message") or ""))
        else:
            code, etype, message = None, None, self._clip(str(body.get("message") or reply.text))
        kind = BASE_RESP_KINDS.get(base) if base else None
        for value in (code, etype):
            if kind is None and isinstance(value, str):
                kind = GATEWAY_CODE_KINDS.get(value.strip().lower())
        if kind is None:
            kind = classify_status(reply.status) if reply.status >= 300 else None
            if kind in (None, ProviderErrorKind.AUTH, ProviderErrorKind.BAD_REPLY) and any(
                word in message.lower() for word in _BALANCE_WORDS
            ):
                kind = ProviderErrorKind.BALANCE
            self._note(
                f"gateway:{reply.status}:{code}:{etype}",
                "gptge: HTTP %d gateway error code=%r type=%r: %s",
                reply.status,
                code,
                etype,
                message,
            )
        if reply.status == 429:
            kind = ProviderErrorKind.RATE_LIMITED
        provider_code = str(base or code or etype or reply.status)
        detail = f"HTTP {reply.status} {provider_code}: {message}"
        return self.http.error(
            kind or ProviderErrorKind.BAD_REPLY, provider_code, detail, reply.retry_after()
        )


def _locator(inner: dict[str, Any]) -> str | None:
    """``file_id`` (a string in the query, a number elsewhere) first, else ``video_url``."""
    file_id = inner.get("file_id")
    if file_id not in (None, "", 0):
        return str(file_id)
    url = inner.get("video_url")
    return url if isinstance(url, str) and url else None


def _progress(value: Any) -> int | None:
    """An integer, or a gateway's ``"40%"`` string; MiniMax itself reports none."""
    if isinstance(value, str) and value.rstrip("%").strip().isdigit():
        return int(value.rstrip("%").strip())
    return whole_number(value)


def _reason(inner: dict[str, Any]) -> str:
    for key in ("fail_reason", "message", "error"):
        value = inner.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


#: The class ``providers.registry`` builds for this provider.
ADAPTER = GptGeProvider
