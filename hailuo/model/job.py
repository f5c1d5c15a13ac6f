"""The job as every layer reads it: a frozen record, a new job's fields, a stored image.

``storage.jobs`` writes and reads them (every SQL statement stays there); the core and
the front ends read them. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from hailuo.model.spec import JobSpec
from hailuo.model.status import JobStatus


class Row(Protocol):
    """A stored row as ``storage/`` reads it (``sqlite3.Row`` is one): columns by name."""

    def keys(self) -> list[str]: ...

    def __getitem__(self, key: str) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...  # the values, in column order


@dataclass(frozen=True)
class Job:
    id: int
    guild_id: int
    channel_id: int
    user_id: int
    interaction_id: int | None
    status_message_id: int | None
    status: JobStatus
    spec: JobSpec
    cost: int
    period: str
    locale: str
    attachment_limit: int | None
    provider: str | None
    provider_task_id: str | None
    provider_meta: dict[str, Any]
    submit_attempts: int
    next_attempt_at: float
    progress: int | None
    polls: int
    next_poll_at: float
    result_locator: str | None
    failure_rule: str | None
    failure_params: dict[str, Any]
    delivery_attempts: int
    next_delivery_at: float
    delivered_message_id: int | None
    delivery_kind: str | None
    delivery_bytes: int | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    finished_at: float | None
    #: A digest of what the job's card last showed (``jobs.cards``): a restart does not
    #: edit a card whose state is unchanged.
    card_seen: str | None = None
    #: How the member is told of the result: "mention", "dm" or "quiet" (chosen at creation).
    notify: str = "mention"
    #: The thread started from the card, where results go (a server's choice), once made.
    thread_id: int | None = None
    #: The process working on the job's step now (``HAILUO_PROCESS_ID``), and when its
    #: lease lapses unless renewed (migration 010); None between steps.
    lease_holder: str | None = None
    lease_expires: float | None = None
    #: Moved by one at every write of the row (migration 011): a transition
    #: guarded by the revision it read hands the job back without reading the row again.
    revision: int = 0

    @classmethod
    def from_row(cls, row: Row | Mapping[str, Any]) -> Job:
        """From a stored row (any mapping of column -> value: ``storage/`` hands its rows)."""
        data = _columns(row)
        data["status"] = JobStatus(data["status"])
        data["spec"] = JobSpec.from_json(data["spec"])
        data["provider_meta"] = _object(data["provider_meta"])
        data["failure_params"] = _object(data["failure_params"])
        if data.keys() != _FIELDS:
            return cls(**data)  # a partial row: the defaults, or the error, of ``__init__``
        return _whole(data)  # the worker reads 10,000 after a restart

    @classmethod
    def created(cls, new: NewJob, job_id: int, notify: str, now: float) -> Job:
        """``new`` as stored under ``job_id`` at ``now``: nothing provided, tried or delivered
        yet. The insert leaves exactly this row (the migrations' defaults), so the creator
        needs no read of it (``-k revision`` compares the two on both engines)."""
        return _whole(
            {
                "id": job_id,
                "guild_id": new.guild_id,
                "channel_id": new.channel_id,
                "user_id": new.user_id,
                "interaction_id": new.interaction_id,
                "status_message_id": new.status_message_id,
                "status": new.status,
                "spec": new.spec,
                "cost": new.cost,
                "period": new.period,
                "locale": new.locale,
                "attachment_limit": new.attachment_limit,
                "provider": None,
                "provider_task_id": None,
                "provider_meta": {},
                "submit_attempts": 0,
                "next_attempt_at": 0.0,
                "progress": None,
                "polls": 0,
                "next_poll_at": 0.0,
                "result_locator": None,
                "failure_rule": None,
                "failure_params": {},
                "delivery_attempts": 0,
                "next_delivery_at": 0.0,
                "delivered_message_id": None,
                "delivery_kind": None,
                "delivery_bytes": None,
                "created_at": now,
                "updated_at": now,
                "submitted_at": None,
                "finished_at": None,
                "card_seen": None,
                "notify": notify,
                "thread_id": None,
                "lease_holder": None,
                "lease_expires": None,
                "revision": 0,
            }
        )

    def evolved(self, **changes: Any) -> Job:
        """This job with ``changes``, as ``dataclasses.replace`` makes it (every status
        answer of every open job makes one)."""
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"not a field of Job: {sorted(unknown)}")
        return _whole({**self.__dict__, **changes})

    @property
    def results_channel_id(self) -> int:
        """Where the result is posted: the job's thread when it has one, else its channel."""
        return self.thread_id if self.thread_id is not None else self.channel_id

    def log_context(self) -> str:
        """Ids and states for log lines: never the prompt, never a secret."""
        return (
            f"job={self.id} guild={self.guild_id} status={self.status.value} "
            f"provider={self.provider or '-'} task={self.provider_task_id or '-'}"
        )


#: Every field of a ``Job`` (what a whole stored row holds).
_FIELDS = {f.name for f in fields(Job)}


def _whole(data: dict[str, Any]) -> Job:
    """The ``Job`` of every field in ``data``, without the frozen ``__init__``: its forty
    ``object.__setattr__`` calls cost more than the rest of decoding a row."""
    job = object.__new__(Job)
    job.__dict__.update(data)
    return job


@dataclass(frozen=True)
class NewJob:
    guild_id: int
    channel_id: int
    user_id: int
    spec: JobSpec
    cost: int
    period: str
    status: JobStatus = JobStatus.QUEUED
    interaction_id: int | None = None
    status_message_id: int | None = None
    locale: str = "en-US"
    attachment_limit: int | None = None
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # role -> (mime, data)
    #: None: the member's stored choice, read by the creating transaction (``JobDesk``).
    notify: str | None = "mention"


@dataclass(frozen=True)
class StoredImage:
    role: str
    mime: str
    data: bytes


def _object(text: str) -> dict[str, Any]:
    """A stored JSON object; the usual empty one without the decoder (every write of a job
    hands its row back, so this runs a few times per step of every job)."""
    return {} if text == "{}" else dict(json.loads(text))


def _columns(row: Row | Mapping[str, Any]) -> dict[str, Any]:
    """Every column by name. A ``sqlite3.Row`` finds a name by comparing it with each of
    its columns in turn, so ``dict(row)`` of a job's 37 columns costs 37 searches; the
    values are taken in column order instead (five times faster, and every write of a job
    hands its row back)."""
    if isinstance(row, Mapping):
        return dict(row)
    return dict(zip(row.keys(), row, strict=True))
