"""MiniMax official API (providers.md §2): submit, query, and the two-step file retrieval.

MiniMax answers most failures with HTTP 200 and a non-zero ``base_resp``;
that is read first, on every reply. ``file_id`` is a string in the query reply
and a number in the retrieve reply, so it is normalised to ``str``.
"""

from __future__ import annotations

from collections.abc import Callable
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
from providers.http import BearerAdapter, ProviderHttp, Reply
from providers.wire import request_body

NAME = "minimax"

#: What this provider accepts and how it spells a request, declared once here and read by the body
#: builder below; ``providers.registry`` collects it. Seed 001; files/retrieve hands out a fresh
#: URL, the file lives about 9 h.
CAPABILITY = ProviderCapability(
    name=NAME,
    label="MiniMax",
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
        camera=Spelling.ENGLISH,
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
        required=frozenset({"model"}),
    ),
    result_lifetime=9 * HOUR,
    # No price of this provider is in the project's references (providers.md, the seeds)
    # as of 2026-12-07: unknown until a server sets its own (``/hailuo-admin price``).
    prices=MappingProxyType({}),
)

#: ``base_resp.status_code`` -> what it means for the job (seed 001, providers.md §2).
BASE_RESP_KINDS: dict[int, ProviderErrorKind] = {
    1000: ProviderErrorKind.UNAVAILABLE,  # unknown error, retry later
    1001: ProviderErrorKind.UNAVAILABLE,  # request timeout
    1002: ProviderErrorKind.RATE_LIMITED,
    1004: ProviderErrorKind.AUTH,
    1008: ProviderErrorKind.BALANCE,
    1024: ProviderErrorKind.UNAVAILABLE,  # internal error
    1026: ProviderErrorKind.MODERATION,  # sensitive prompt (at submit)
    1027: ProviderErrorKind.MODERATION,  # sensitive output (during generation)
    2013: ProviderErrorKind.INVALID_REQUEST,
    2038: ProviderErrorKind.AUTH,  # real-name verification required (mainland host)
    2049: ProviderErrorKind.AUTH,
}

_PHASES = {
    "preparing": Phase.QUEUED,
    "queueing": Phase.QUEUED,
    "processing": Phase.RUNNING,
    "success": Phase.SUCCEEDED,
    "fail": Phase.FAILED,
    "failed": Phase.FAILED,  # the callback's lowercase word
}


class MiniMaxProvider(BearerAdapter):
    name = NAME

    def submit_body(self, job: PreparedInput) -> dict[str, Any]:
        return video_body(job, CAPABILITY.spelling)

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        reply = await self.http.request(
            "POST", "/v1/video_generation", json_body=self.submit_body(job), idempotent=False
        )
        if reply.status == 200 and not isinstance(reply.body, dict):
            # A 200 we cannot read may still carry a task: never resubmit it.
            raise self.http.error(ProviderErrorKind.UNKNOWN_OUTCOME, None, "unreadable 200 reply")
        return receipt_of(self.http, self._checked(reply))

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        reply = await self.http.request(
            "GET", "/v1/query/video_generation", params={"task_id": task_id}, idempotent=True
        )
        if (
            reply.status == 200
            and isinstance(reply.body, dict)
            and str(reply.body.get("status", "")).lower() in ("fail", "failed")
        ):
            # A finished failure, whatever base_resp says (1027, or 1024 and the like).
            return self.task_state(reply.body)
        return task_state_of(reply, self._checked, self.task_state)

    def task_state(self, data: dict[str, Any]) -> TaskState:
        """Read a query reply or a callback body (the same structure, other status case)."""
        raw = str(data.get("status", ""))
        phase = _PHASES.get(raw.lower())
        if phase is None:
            # An unknown word: keep polling rather than fail a paid task.
            return TaskState(phase=Phase.RUNNING, raw_status=raw[:40])
        if phase is Phase.SUCCEEDED:
            file_id = data.get("file_id")
            if file_id in (None, "", 0):
                raise self.http.error(ProviderErrorKind.BAD_REPLY, None, "Success without file_id")
            return TaskState(phase=phase, locator=str(file_id), raw_status=raw)
        if phase is Phase.FAILED:
            code = base_code(data)
            kind = BASE_RESP_KINDS.get(code or 0, ProviderErrorKind.UNAVAILABLE)
            if kind not in TASK_FAILURE_KINDS:
                kind = ProviderErrorKind.UNAVAILABLE
            failure = self.http.error(kind, str(code) if code else None, _short(base_msg(data)))
            return TaskState(phase=phase, failure=failure, raw_status=raw)
        return TaskState(phase=phase, raw_status=raw)

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        reply = await self.http.request(
            "GET", "/v1/files/retrieve", params={"file_id": locator}, idempotent=True
        )
        data = self._checked(reply)
        file = data.get("file")
        url = file.get("download_url") if isinstance(file, dict) else None
        if not isinstance(url, str) or not url:
            raise self.http.error(
                ProviderErrorKind.BAD_REPLY, None, "retrieve without download_url"
            )
        return url

    def _checked(self, reply: Reply) -> dict[str, Any]:
        """The JSON object of a reply, or the ProviderError its status or base_resp means."""
        if reply.status != 200:
            raise self.http.status_error(reply)
        return base_resp_checked(self.http, reply, _short)


def video_body(job: PreparedInput, wire: WireNames) -> dict[str, Any]:
    """MiniMax's video_generation body (gpt.ge passes the same one through, in its names)."""
    return request_body(job, wire)


def receipt_of(http: ProviderHttp, data: dict[str, Any]) -> SubmitReceipt:
    """The receipt of a checked submit reply."""
    task_id = data.get("task_id")
    if not task_id:
        # HTTP 2xx, base_resp 0, and no task id: we cannot know what the provider holds.
        raise http.error(ProviderErrorKind.UNKNOWN_OUTCOME, None, "no task_id in reply")
    return SubmitReceipt(task_id=str(task_id))


def task_state_of(
    reply: Reply,
    checked: Callable[[Reply], dict[str, Any]],
    task_state: Callable[[dict[str, Any]], TaskState],
) -> TaskState:
    """A query reply read; a base_resp refusal about the task itself means it failed."""
    try:
        data = checked(reply)
    except ProviderError as exc:
        if exc.kind in TASK_FAILURE_KINDS:
            return TaskState(phase=Phase.FAILED, failure=exc, raw_status="base_resp")
        raise
    return task_state(data)


def base_resp_checked(
    http: ProviderHttp, reply: Reply, clip: Callable[[str], str]
) -> dict[str, Any]:
    """The JSON object of a reply whose status passed, or the error its ``base_resp`` means."""
    body = http.object_of(reply)
    code = base_code(body)
    if code:
        kind = BASE_RESP_KINDS.get(code, ProviderErrorKind.UNAVAILABLE)
        raise http.error(kind, str(code), clip(base_msg(body)))
    return body


def base_code(data: dict[str, Any]) -> int | None:
    base = data.get("base_resp")
    if not isinstance(base, dict):
        return None
    try:
        return int(base.get("status_code") or 0)
    except (TypeError, ValueError):
        return None


def base_msg(data: dict[str, Any]) -> str:
    base = data.get("base_resp")
    return str(base.get("status_msg", "")) if isinstance(base, dict) else ""


def _short(text: str) -> str:
    return text[:200]


#: The class ``providers.registry`` builds for this provider.
ADAPTER = MiniMaxProvider
