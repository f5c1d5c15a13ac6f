"""The one protocol every provider adapter implements, and the common task state.

Adapters only translate: a ``JobSpec`` (plus prepared images) into one
provider's HTTP request, and its replies into ``TaskState``. They know nothing
of quotas, members or Discord. Errors are ``hailuo.model.errors.ProviderError`` with
a ``ProviderErrorKind`` that tells the job service what to do next.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.spec import JobSpec

__all__ = [
    "TASK_FAILURE_KINDS",
    "Phase",
    "PreparedInput",
    "Provider",
    "ProviderError",
    "ProviderErrorKind",
    "SubmitReceipt",
    "TaskState",
]

#: A failed task is about the request only for these kinds; anything else is "could not
#: make it" (a RATE_LIMITED wording would tell the member to wait for a finished task).
TASK_FAILURE_KINDS = frozenset({ProviderErrorKind.MODERATION, ProviderErrorKind.INVALID_REQUEST})


class Phase(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class TaskState:
    """What a provider says of a task, in common words.

    ``locator`` is how to reach the finished file: a URL, or (MiniMax, gpt.ge)
    a file id that ``result_url`` turns into a URL. ``failure`` explains a
    FAILED phase with a member-safe kind and the provider's own code.
    """

    phase: Phase
    progress: int | None = None
    locator: str | None = None
    failure: ProviderError | None = None
    raw_status: str = ""


@dataclass(frozen=True)
class SubmitReceipt:
    task_id: str
    meta: dict[str, Any] = field(default_factory=dict)  # what querying needs (e.g. Freepik's tier)


@dataclass(frozen=True)
class PreparedInput:
    """A job ready to send: the spec and its images as data URLs (see hailuo.media.images)."""

    spec: JobSpec
    first_frame: str | None = None
    last_frame: str | None = None
    callback_url: str | None = None


class Provider(Protocol):
    name: str

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        """Create the task. Raise ProviderError; UNKNOWN_OUTCOME when the body may have landed."""
        ...

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState: ...

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        """Turn a locator into a downloadable URL (a fresh one each call where possible)."""
        ...


def failed(kind: ProviderErrorKind, provider: str, code: str | None, detail: str) -> TaskState:
    return TaskState(
        phase=Phase.FAILED,
        failure=ProviderError(kind, provider=provider, provider_code=code, detail=detail),
        raw_status=detail[:40],
    )
