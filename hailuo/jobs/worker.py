"""The job's life after creation: submit, follow, deliver, settle; and recovery at start-up.

``tick()`` takes one step of every job that is due and returns; ``run()`` is
a thin loop around it. Every step writes its intent before the side effect
and its outcome after, each as a guarded transition, so a crash or a second
worker at any point loses nothing and repeats nothing that costs money:

- ``submitting`` is written before the provider is called; a job found there
  at start-up is failed and refunded, never sent again (design, "The job's life").
- a delivery attempt is counted before posting; a job found with attempts but
  no posted message id is first looked for in the channel (plus the nonce
  Discord deduplicates on), so it is never posted twice.

This module schedules the steps and follows submitted tasks; the steps with
rules of their own are beside it: ``submitting`` (provider choice, failover
and refusals), ``delivering`` (the exactly-once post), ``failures`` (ending a
job) and ``cards`` (the throttled status edits), with ``steps`` holding what
they share (``WorkerConfig`` among it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from hailuo.clock import Clock
from hailuo.jobs.cards import StatusCards
from hailuo.jobs.delivering import Deliverer
from hailuo.jobs.durations import DurationBook, DurationSeed
from hailuo.jobs.failures import Failures
from hailuo.jobs.notify import Notifier
from hailuo.jobs.resilience import AccountAlerts, Resilience
from hailuo.jobs.retry import Backoff, poll_interval
from hailuo.jobs.steps import StepKit
from hailuo.jobs.steps import WorkerConfig as WorkerConfig  # re-exported: imported from here
from hailuo.jobs.submitting import INTERRUPTED_SUBMIT, Submitter
from hailuo.media.downloads import Downloader
from hailuo.media.shrink import Shrinker
from hailuo.model.capability import Table
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.job import Job
from hailuo.model.provider import Phase, PreparedInput, Provider, TaskState
from hailuo.model.spec import JobSpec
from hailuo.model.status import JobStatus
from hailuo.web.metrics import Metrics
from storage.jobs import StaleTransition
from storage.port import Storage

log = logging.getLogger(__name__)

#: The failure rule a member may read (it has a catalog entry).
PROVIDER_TIMEOUT = "job.provider_timeout"


@dataclass(frozen=True)
class WorkerDeps:
    """What a worker works with, built once by ``hailuo.assembly.build_core``.

    The optional parts have the production default when left out: the capability
    tables decide who ``serves`` a spec, each provider gets a fresh ``Resilience``
    (fixed caps from ``submit_caps``), no provider calls back, nothing is shrunk.
    """

    storage: Storage
    providers: Mapping[str, Provider]
    order: tuple[str, ...]
    notifier: Notifier
    downloader: Downloader
    clock: Clock
    rng: random.Random
    metrics: Metrics
    config: WorkerConfig
    prepare: Callable[[Job], Awaitable[PreparedInput]]
    #: Every provider's capability (``providers.registry.TABLE``, passed in by the builder).
    capabilities: Table
    submit_caps: Mapping[str, int | None] | None = None
    serves: Callable[[str, JobSpec], bool] | None = None
    callback_url: Callable[[str, int], str | None] | None = None
    downloaders: Mapping[str, Downloader] | None = None
    shrinker: Shrinker | None = None
    resilience: Resilience | None = None
    #: Measured run times, for the cards' ETA (a fresh book when left out).
    durations: DurationBook | None = None


class Worker:
    def __init__(self, deps: WorkerDeps) -> None:
        jobs, clock, config, notifier = deps.storage.jobs, deps.clock, deps.config, deps.notifier
        providers = dict(deps.providers)
        order = list(deps.order)
        self.jobs = jobs
        self.providers = providers
        self.order = order
        self.notifier = notifier
        self.clock = clock
        self.rng = deps.rng
        self.metrics = deps.metrics
        self.config = config
        self.backoff = Backoff()
        self.alerts = AccountAlerts(clock, on_alert=self._alerted)
        self.durations = deps.durations if deps.durations is not None else DurationBook()
        self.cards = StatusCards(
            notifier,
            clock,
            edit_interval=config.status_edit_interval,
            old_card_age=config.old_card_age,
            durations=self.durations,
        )
        self.failures = Failures(deps.storage, clock, self.cards.show)
        kit = StepKit(
            jobs,
            providers,
            config,
            clock,
            deps.rng,
            self.backoff,
            deps.metrics,
            self.failures.fail,
            self.cards.show,
        )
        self.submitter = Submitter(
            kit,
            order,
            alerts=self.alerts,
            prepare=deps.prepare,
            wake=self.wake,
            capabilities=deps.capabilities,
            submit_caps=deps.submit_caps,
            serves=deps.serves,
            callback_url=deps.callback_url,
            resilience=deps.resilience,
        )
        self.deliverer = Deliverer(
            kit,
            notifier=notifier,
            downloader=deps.downloader,
            downloaders=deps.downloaders,
            shrinker=deps.shrinker,
            capabilities=deps.capabilities,
        )
        self._busy: set[int] = set()
        self._background: set[asyncio.Future[None]] = set()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(config.concurrency)
        #: Work run at the start of every tick (the approval queue's expiry and posts).
        self.sweeps: list[Callable[[], Awaitable[None]]] = [DurationSeed(jobs, self.durations)]

    @property
    def resilience(self) -> Resilience:
        """Each provider's submission limiter and circuit breaker (read by tests and metrics)."""
        return self.submitter.resilience

    def wake(self) -> None:
        self._wake.set()

    async def recover(self) -> None:
        """At start-up: end each job a crash left in ``submitting``; the rest resume in ``tick``."""
        for job in await self.jobs.by_status(JobStatus.SUBMITTING):
            log.warning("recovering interrupted submit %s", job.log_context())
            await self.failures.fail(job, INTERRUPTED_SUBMIT, {"provider": job.provider or ""})

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failed tick is logged and the loop goes on."""
        while not stop.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker tick failed; continuing")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle_wait())

    def _idle_wait(self) -> float:
        return max(0.01, min(self.config.poll_seconds, 1.0))

    async def tick(self) -> None:
        """Take one due step of every open job, concurrently, and wait for them all.

        Queued jobs are admitted in id order, synchronously, before any step runs, so
        the rate limiter's slots go first come, first served and each waiting job's
        queue position is the number of queued jobs before it plus one.
        """
        for sweep in self.sweeps:
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep %r failed; continuing", sweep)
        now = self.clock()
        steps: list[asyncio.Future[None]] = []
        position = 0
        forecast = self.submitter.forecast(now)
        for job in await self.jobs.open_jobs():
            if job.id in self._busy:
                continue
            if job.status is JobStatus.QUEUED:
                action = self.submitter.admit(job, now)
                if action is None:
                    position += 1
                    eta = forecast.eta(job)
                    steps.append(self._start(job, self.cards.show(job, position, eta)))
                else:
                    steps.append(self._start(job, action))
            elif self._due(job, now):
                steps.append(self._start(job, self._follow(job)))
        if steps:
            await asyncio.gather(*steps)

    def poll_soon(self, job_id: int, provider: str) -> None:
        """Query one task now, in the background (a provider's callback said it changed)."""
        future = asyncio.ensure_future(self._poll_now(job_id, provider))
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def finish_submits(self, within: float) -> bool:
        """At a stop: wait for the submits under way to record their outcome (shielded calls).

        True when none is left. One still unanswered after ``within`` seconds stays in
        ``submitting`` and is ended at the next start like any interrupted submit.
        """
        pending = set(self.submitter.in_flight)
        if pending:
            log.info("waiting for %d submit(s) under way", len(pending))
            done, pending = await asyncio.wait(pending, timeout=max(0.0, within))
            for future in done:
                if not future.cancelled() and future.exception() is not None:
                    log.warning("a submit under way failed at stop: %r", future.exception())
        return not pending

    async def drain(self) -> None:
        """Wait for the background queries started by ``poll_soon``."""
        while self._background:
            await asyncio.gather(*list(self._background))

    async def _poll_now(self, job_id: int, provider: str) -> None:
        job = await self.jobs.get(job_id)
        if job is None or job.provider != provider or job.id in self._busy:
            return
        if job.status not in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            return
        await self._start(job, self._poll(job))

    def _due(self, job: Job, now: float) -> bool:
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            return job.next_poll_at <= now
        if job.status is JobStatus.SUCCEEDED:
            return job.next_delivery_at <= now
        return False

    def _start(self, job: Job, action: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        self._busy.add(job.id)
        return asyncio.ensure_future(self._guarded(job, action))

    async def _guarded(self, job: Job, action: Coroutine[Any, Any, None]) -> None:
        try:
            async with self._slots:
                await action
        except StaleTransition:
            log.info("job %d moved by someone else; skipping this step", job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("step failed for %s", job.log_context())
        finally:
            action.close()  # a step cancelled before it began must not warn "never awaited"
            self._busy.discard(job.id)

    async def _follow(self, job: Job) -> None:
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            await self._poll(job)
        elif job.status is JobStatus.SUCCEEDED:
            await self.deliverer.deliver(job)

    # -- follow ----------------------------------------------------------------------------

    async def _poll(self, job: Job) -> None:
        now = self.clock()
        assert job.provider is not None and job.provider_task_id is not None
        provider = self.providers.get(job.provider)
        started = job.submitted_at or job.created_at
        if provider is None or now - started > self.config.task_deadline:
            await self.failures.fail(job, PROVIDER_TIMEOUT, {"task_id": job.provider_task_id})
            return
        try:
            state = await provider.query(job.provider_task_id, job.provider_meta)
        except ProviderError as exc:
            self.metrics.provider_call(job.provider, "query", exc.kind.value)
            log.warning("query failed %s: %s (%s)", job.log_context(), exc, exc.detail)
            if exc.kind in (ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE):
                self.alerts.report(job.provider, exc.kind)
            meta = dict(job.provider_meta)
            if exc.kind is ProviderErrorKind.NOT_FOUND:
                # The provider no longer knows the task: a few answers in a row settle it
                # (a single one may be a replica lagging behind the submit).
                meta["not_found"] = int(meta.get("not_found", 0)) + 1
                if meta["not_found"] >= self.config.not_found_limit:
                    await self.failures.fail(job, exc.rule, {"provider": job.provider, "code": ""})
                    return
            delay = self.backoff.delay(min(job.polls + 1, 6), self.rng, exc.retry_after)
            await self.jobs.update(
                job, now, polls=job.polls + 1, next_poll_at=now + delay, provider_meta=meta
            )
            return
        self.metrics.provider_call(job.provider, "query", "ok")
        await self.apply_state(job, state)

    async def apply_state(self, job: Job, state: TaskState) -> Job:
        """Record what the provider said of the task (from a poll or a verified callback)."""
        now = self.clock()
        started = job.submitted_at or job.created_at
        next_poll = now + poll_interval(now - started, self.config.poll_seconds)
        if state.phase is Phase.SUCCEEDED:
            if job.submitted_at is not None:
                self.durations.record(job.spec, now - job.submitted_at)
            job = await self.jobs.transition(
                job,
                JobStatus.SUCCEEDED,
                now,
                result_locator=state.locator,
                progress=100,
                next_delivery_at=now,
            )
            await self.cards.show(job)
            self.wake()
            return job
        if state.phase is Phase.FAILED:
            failure = state.failure
            rule = failure.rule if failure else "provider.failed"
            code = failure.provider_code if failure else None
            await self.failures.fail(
                job, rule, {"provider": job.provider or "", "code": code or ""}
            )
            return job
        status = JobStatus.RUNNING if state.phase is Phase.RUNNING else job.status
        updates: dict[str, Any] = {"polls": job.polls + 1, "next_poll_at": next_poll}
        if state.progress is not None:
            updates["progress"] = max(0, min(99, state.progress))
        if status is not job.status:
            job = await self.jobs.transition(job, status, now, **updates)
        else:
            job = await self.jobs.update(job, now, **updates)
        await self.cards.show(job)
        return job

    def _alerted(self, provider: str, kind: ProviderErrorKind) -> None:
        self.metrics.provider_call(provider, "admin_alert", kind.value)
