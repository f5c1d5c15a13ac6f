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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hailuo.jobs.cards import StatusCards
from hailuo.jobs.delivering import Deliverer
from hailuo.jobs.deps import WorkerDeps as WorkerDeps  # re-exported: imported from here
from hailuo.jobs.durations import DurationBook, DurationSeed
from hailuo.jobs.failures import Failures
from hailuo.jobs.guild_alerts import tell_guild
from hailuo.jobs.leases import Leases
from hailuo.jobs.resilience import AccountAlerts, Resilience
from hailuo.jobs.retry import Backoff
from hailuo.jobs.schedule import TaskSchedule
from hailuo.jobs.steps import StepKit
from hailuo.jobs.steps import WorkerConfig as WorkerConfig  # re-exported: imported from here
from hailuo.jobs.submitting import INTERRUPTED_SUBMIT, Submitter, why_given_up
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.job import Job
from hailuo.model.provider import Phase, TaskState
from hailuo.model.status import JobStatus
from storage.jobs import StaleTransition

log = logging.getLogger(__name__)

#: The failure rule a member may read (it has a catalog entry).
PROVIDER_TIMEOUT = "job.provider_timeout"

#: At most this many polls and this many deliveries are read and started per tick (due
#: first): 10,000 jobs due at once after a restart are taken in slices, not all at once.
BATCH = 64
#: Queue-position edits go to the first few queued jobs of each channel only: a move
#: further back in line is not worth an edit of every waiting card at every tick.
QUEUE_CARDS_PER_CHANNEL = 5
Action = Coroutine[Any, Any, None]


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
        self.storage = deps.storage
        self.alerts = AccountAlerts(
            clock, on_alert=self._alerted, on_guild_alert=self._guild_alerted
        )
        self.durations = deps.durations if deps.durations is not None else DurationBook()
        self.cards = StatusCards(
            notifier,
            clock,
            edit_interval=config.status_edit_interval,
            old_card_age=config.old_card_age,
            remember=jobs.set_card_seen,
            durations=self.durations,
        )
        #: When each task is asked about: near its learned finish (``jobs.schedule``).
        self.schedule = TaskSchedule(
            jobs, deps.rng, poll_seconds=config.poll_seconds, callback_url=deps.callback_url
        )
        self._more = False
        self.callback_url = deps.callback_url
        self.failures = Failures(deps.storage, clock, self.cards.show, notifier.tell_member)
        self.leases = Leases(deps.storage.leases, clock, config.process_id, config.lease_seconds)
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
            self.leases.hold,
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
            image_url=deps.image_url,
            resilience=deps.resilience,
            first_poll=self.schedule.first_poll,
            limits=deps.storage.limits,
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
        """At start-up: end each submit a crash interrupted (a live process's lease: its own)."""
        await self.schedule.load()
        await self.leases.release_dead()
        for job in await self.jobs.by_status(JobStatus.SUBMITTING):
            async with self.leases.step(job) as ours:
                if ours:
                    await self._interrupted(job)

    async def _interrupted(self, job: Job) -> None:
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
            if self._more:
                await asyncio.sleep(0)  # a full slice was taken: the rest is due too
                continue
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
        await self.schedule.load()
        await self.submitter.shared.pull()
        now = self.clock()
        steps: list[asyncio.Future[None]] = []
        position = 0
        in_line: dict[int, int] = {}
        forecast = self.submitter.forecast(now)
        # Only what is due (the schedule's indexes), never every open job.
        due = await self.leases.claim_due(BATCH, now)
        self._more = sum(job.status is not JobStatus.QUEUED for job in due) >= BATCH
        for job in due:
            if job.id in self._busy:
                continue
            if job.status is JobStatus.QUEUED:
                action = self.submitter.admit(job, now)
                if action is None:
                    position += 1
                    in_line[job.channel_id] = in_line.get(job.channel_id, 0) + 1
                    if in_line[job.channel_id] <= QUEUE_CARDS_PER_CHANNEL:
                        eta = forecast.eta(job)
                        steps.append(self._start(job, self.cards.show(job, position, eta)))
                else:
                    steps.append(self._start(job, action))
            elif self._due(job, now):
                steps.append(self._start(job, self._follow(job), claimed=True))
            else:
                self.leases.finished(job.id)
        await asyncio.gather(*steps)
        await self.leases.release_finished()

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
        await self._start(job, self._poll(job, prompted=True))

    def _due(self, job: Job, now: float) -> bool:
        if job.status is JobStatus.SUBMITTING:
            return True  # claimed only once the lease of the process that sent it lapsed
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            return job.next_poll_at <= now
        if job.status is JobStatus.SUCCEEDED:
            return job.next_delivery_at <= now
        return False

    def _start(self, job: Job, action: Action, *, claimed: bool = False) -> asyncio.Future[None]:
        self._busy.add(job.id)
        return asyncio.ensure_future(self._guarded(job, action, claimed))

    async def _guarded(self, job: Job, action: Action, claimed: bool) -> None:
        try:
            async with self._slots, self.leases.step(job, claimed=claimed) as ours:
                if ours:  # else another process has it, or took this step meanwhile
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
        elif job.status is JobStatus.SUBMITTING:
            await self._interrupted(job)

    # -- follow ----------------------------------------------------------------------------

    async def _poll(self, job: Job, *, prompted: bool = False) -> None:
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
                self.alerts.report(job.provider, exc.kind, guild_id=job.guild_id)
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
        await self.apply_state(job, state, prompted=prompted)

    async def apply_state(self, job: Job, state: TaskState, *, prompted: bool = True) -> Job:
        """Record what the provider said of the task (from a poll or a verified callback).

        ``prompted``: the query was prompted by the provider's callback, so a finish it
        reports happened just now (a scheduled poll's happened since the previous one)."""
        now = self.clock()
        next_poll = now + self.schedule.next_poll(job, now)
        if state.phase is Phase.SUCCEEDED:
            await self.schedule.learn(job, now, prompted)
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
            if failure is not None and failure.kind is ProviderErrorKind.UNSUPPORTED:
                return await self._elsewhere(job, failure)
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

    async def _elsewhere(self, job: Job, failure: ProviderError) -> Job:
        """A task that failed because its provider cannot take the request as sent: the
        provider made nothing, so the job goes back in line for the next one that can
        (or fails, refunded, saying why, when none is left)."""
        now = self.clock()
        name = job.provider or failure.provider
        meta = dict(job.provider_meta)
        meta["given_up"] = [*meta.get("given_up", []), name]
        meta["given_up_why"] = {**meta.get("given_up_why", {}), name: why_given_up(failure)}
        log.warning("moving %s on from %s: %s", job.log_context(), name, failure)
        job = await self.jobs.transition(
            job,
            JobStatus.QUEUED,
            now,
            provider=None,
            provider_task_id=None,
            provider_meta=meta,
            next_attempt_at=now,
        )
        await self.cards.show(job)
        self.wake()
        return job

    def _alerted(self, provider: str, kind: ProviderErrorKind) -> None:
        self.metrics.provider_call(provider, "admin_alert", kind.value)

    def _guild_alerted(self, guild_id: int, provider: str, kind: ProviderErrorKind) -> None:
        """Post the server's alert in the background (``drain`` waits for it)."""
        told = tell_guild(self.storage, self.notifier, guild_id, provider, kind)
        task = asyncio.create_task(told, name="hailuo-account-alert")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
