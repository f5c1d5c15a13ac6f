"""What the worker's steps share: their settings, their tools, and how they report.

The worker builds one ``StepKit`` and hands it to every step (submitting,
delivering), so each is given the repository, the providers, the settings,
time, retry pacing and metrics the same way, and ends a job or edits its card
through the same two callables: ``fail`` (``failures.Failures.fail``) and
``show`` (``cards.StatusCards.show``)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from hailuo.clock import Clock
from hailuo.jobs.retry import Backoff
from hailuo.model.job import Job
from hailuo.model.provider import Provider
from hailuo.model.status import JobStatus
from hailuo.web.metrics import Metrics
from storage.port import JobStore


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 5.0
    default_upload_limit: int = 10 * 1024 * 1024
    task_deadline: float = 2 * 3600.0  # a task still open after this is given up (refunded)
    queue_deadline: float = 1800.0  # HAILUO_QUEUE_TIMEOUT: no provider took it, refunded
    failover_patience: float = 30.0  # how long one job waits on one unhealthy provider
    #: A delivery is retried until the provider's file is gone (its lifetime), paced by
    #: its age between these two waits (seconds); never given up after a count of tries.
    delivery_retry_shortest: float = 5.0
    delivery_retry_cap: float = 300.0
    not_found_limit: int = 5  # consecutive "no such task" answers before the job is given up
    status_edit_interval: float = 10.0  # progress-only edits, per job
    old_card_age: float = 3600.0  # an older card is edited on state changes only (30046)
    concurrency: int = 16
    query_concurrency: int = 32  # status queries at once (their rate: ``jobs.budget``)
    #: This process among those sharing the database (``HAILUO_PROCESS_ID``; empty:
    #: ``hostname-pid``), and how long a job's lease lasts unless renewed (seconds).
    process_id: str = ""
    lease_seconds: float = 60.0


class Fail(Protocol):
    """End a job with a failure rule (``to`` another terminal state than ``failed``)."""

    def __call__(
        self, job: Job, rule: str, params: dict[str, Any], *, to: JobStatus = ...
    ) -> Coroutine[Any, Any, None]: ...


@dataclass(frozen=True)
class StepKit:
    """Built once by the worker; the same objects for every step."""

    jobs: JobStore
    providers: dict[str, Provider]
    config: WorkerConfig
    clock: Clock
    rng: random.Random
    backoff: Backoff
    metrics: Metrics
    fail: Fail
    show: Callable[[Job], Awaitable[None]]
    #: Before a side effect that cannot be taken back: the job's lease is still ours
    #: (``leases.Leases.hold``; raises ``LeaseLost`` when another process took it over).
    hold: Callable[[Job], Awaitable[None]] | None = None


class Step:
    """A step of the worker: the kit's tools as its own attributes."""

    def __init__(self, kit: StepKit) -> None:
        self.jobs = kit.jobs
        self.providers = kit.providers
        self.config = kit.config
        self.clock = kit.clock
        self.rng = kit.rng
        self.backoff = kit.backoff
        self.metrics = kit.metrics
        self._fail = kit.fail
        self._show = kit.show
        self._hold = kit.hold or _held


async def _held(job: Job) -> None:
    """No lease to check (a step built without one, in a unit test)."""
