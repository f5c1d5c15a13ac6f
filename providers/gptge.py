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

import logging
from typing import Any

import aiohttp

from hailuo.camera import parse_prompt, spelling_for
from hailuo.errors import ProviderError, ProviderErrorKind
from hailuo.spec import Mode
from providers.base import Phase, PreparedInput, SubmitReceipt, TaskState
from providers.http import DEFAULT_TIMEOUT, ProviderHttp, Reply, classify_status
from providers.minimax import BASE_RESP_KINDS

log = logging.getLogger(__name__)

NAME = "gptge"
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
_TASK_FAILURE_KINDS = frozenset({ProviderErrorKind.MODERATION, ProviderErrorKind.INVALID_REQUEST})


class GptGeProvider:
    name = NAME

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.http = ProviderHttp(
            session,
            provider=NAME,
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
        )
        self._key = api_key
        self._noted: set[str] = set()

    # -- submit

    def submit_body(self, job: PreparedInput) -> dict[str, Any]:
        spec = job.spec
        body: dict[str, Any] = {
            "model": spec.model,
            "duration": spec.duration,
            "resolution": spec.resolution,
            "prompt_optimizer": spec.prompt_optimizer,
            "fast_pretreatment": spec.fast_pretreatment,
        }
        if spec.prompt:
            body["prompt"] = parse_prompt(spec.prompt).render(spelling_for(NAME))
        if spec.mode in (Mode.IMAGE, Mode.FIRST_LAST) and job.first_frame:
            body["first_frame_image"] = job.first_frame
        if spec.mode is Mode.FIRST_LAST and job.last_frame:
            body["last_frame_image"] = job.last_frame
        if job.callback_url:
            body["callback_url"] = job.callback_url
        return body

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        reply = await self.http.request(
            "POST", SUBMIT_PATH, json_body=self.submit_body(job), idempotent=False
        )
        if 200 <= reply.status < 300 and not isinstance(reply.body, dict):
            # The body was accepted and the answer is unreadable: the task may exist.
            raise self.http.error(ProviderErrorKind.UNKNOWN_OUTCOME, None, "unreadable 2xx reply")
        data = self._checked(reply)
        task_id = data.get("task_id")
        if not task_id:
            raise self.http.error(ProviderErrorKind.UNKNOWN_OUTCOME, None, "no task_id in reply")
        return SubmitReceipt(task_id=str(task_id))

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
        try:
            data = self._checked(reply)
        except ProviderError as exc:
            if exc.kind in _TASK_FAILURE_KINDS:
                # A base_resp refusal about the task itself (MiniMax's reading): it failed.
                return TaskState(phase=Phase.FAILED, failure=exc, raw_status="base_resp")
            raise
        return self.task_state(data)

    def task_state(self, data: dict[str, Any]) -> TaskState:
        """Read the native MiniMax shape, the wrapper shape, or a callback body."""
        inner = self._task_object(data)
        raw = str(inner.get("status", ""))
        phase = _PHASES.get(raw.lower())
        if phase is None:
            self._note(f"status:{raw}", "gptge: unknown status %r; still polling", raw[:40])
            return TaskState(phase=Phase.RUNNING, raw_status=raw[:40])
        if phase is Phase.SUCCEEDED:
            locator = _locator(inner)
            if locator is None:
                raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "Success without file")
            return TaskState(phase=phase, locator=locator, raw_status=raw)
        if phase is Phase.FAILED:
            code = _base_code(inner) or _base_code(data)
            message = self._clip(_base_msg(inner) or _base_msg(data) or _reason(inner))
            kind = BASE_RESP_KINDS.get(code or 0, ProviderErrorKind.UNAVAILABLE)
            if code is None and "sensitive" in message.lower():
                kind = ProviderErrorKind.MODERATION
            if kind not in _TASK_FAILURE_KINDS:
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
        if not isinstance(body, dict):
            raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "reply is not a JSON object")
        code = _base_code(body)
        if code:
            kind = BASE_RESP_KINDS.get(code, ProviderErrorKind.UNAVAILABLE)
            raise self.http.error(kind, str(code), self._clip(_base_msg(body)))
        return body

    def _gateway_error(self, reply: Reply) -> ProviderError:
        """An HTTP error or an ``{"error": {...}}`` body; a MiniMax ``base_resp`` wins."""
        body = reply.body if isinstance(reply.body, dict) else {}
        base = _base_code(body)
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

    def _clip(self, text: str) -> str:
        return text.replace(self._key, "***")[:200] if self._key else text[:200]

    def _note(self, key: str, message: str, *args: object) -> None:
        if key not in self._noted:
            self._noted.add(key)
            log.warning(message, *args)


def _locator(inner: dict[str, Any]) -> str | None:
    """``file_id`` (a string in the query, a number elsewhere) first, else ``video_url``."""
    file_id = inner.get("file_id")
    if file_id not in (None, "", 0):
        return str(file_id)
    url = inner.get("video_url")
    return url if isinstance(url, str) and url else None


def _progress(value: Any) -> int | None:
    """An integer, or a gateway's ``"40%"`` string; MiniMax itself reports none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.rstrip("%").strip().isdigit():
        return int(value.rstrip("%").strip())
    return None


def _reason(inner: dict[str, Any]) -> str:
    for key in ("fail_reason", "message", "error"):
        value = inner.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _base_code(data: dict[str, Any]) -> int | None:
    base = data.get("base_resp")
    if not isinstance(base, dict):
        return None
    try:
        return int(base.get("status_code") or 0)
    except (TypeError, ValueError):
        return None


def _base_msg(data: dict[str, Any]) -> str:
    base = data.get("base_resp")
    return str(base.get("status_msg", "")) if isinstance(base, dict) else ""
