"""Following a submitted task: one status query, and what its answer does to the job.

Split from ``hailuo.jobs.worker`` (which decides *when* a task is asked: its schedule
and each provider's status budget). A query's answer either ends the task
(succeeded: learned and handed to delivery; failed: ended or moved to the next
provider) or leaves it running, which is by far the most common answer: only the
job's poll count, progress and next query time change.

Those writes (and a task's move from submitted to running) are grouped
(``hailuo.jobs.grouped``): every poll that ends while the previous group commits joins
the next one, so a thousand polls due at once after a restart cost a few transactions
(each one a disk sync) instead of a thousand. A grouped write is still guarded by the
state the job was read in; losing one in a crash costs only a repeated query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hailuo.jobs.grouped import Grouped
from hailuo.jobs.resilience import AccountAlerts
from hailuo.jobs.schedule import TaskSchedule
from hailuo.jobs.steps import Step, StepKit
from hailuo.jobs.submitting import why_given_up
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.job import Job
from hailuo.model.provider import Phase, TaskState
from hailuo.model.status import JobStatus, can_transition
from storage.jobs import StaleTransition
from storage.port import PollRecord

log = logging.getLogger(__name__)

#: The failure rule a member may read (it has a catalog entry).
PROVIDER_TIMEOUT = "job.provider_timeout"


class Follower(Step):
    """Asks a provider about one task and records the answer."""

    def __init__(
        self,
        kit: StepKit,
        *,
        alerts: AccountAlerts,
        schedule: TaskSchedule,
        wake: Callable[[], None],
    ) -> None:
        super().__init__(kit)
        self.alerts = alerts
        self.schedule = schedule
        self._wake = wake
        self.writes: Grouped[PollRecord] = Grouped(
            kit.jobs.record_polls, lambda r: r.job_id, most=256
        )
        #: Status queries at once. A slot is held for the call only: the answer's write
        #: waits for its group's commit (a disk sync, often longer than the call) without
        #: keeping the next query from going.
        self.slots = asyncio.Semaphore(kit.config.query_concurrency)

    async def poll(self, job: Job, *, prompted: bool = False) -> None:
        now = self.clock()
        assert job.provider is not None and job.provider_task_id is not None
        provider = self.providers.get(job.provider)
        started = job.submitted_at or job.created_at
        if provider is None or now - started > self.config.task_deadline:
            await self._fail(job, PROVIDER_TIMEOUT, {"task_id": job.provider_task_id})
            return
        if not prompted:
            self.metrics.query_lateness(now - job.next_poll_at)
        try:
            async with self.slots:
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
                    await self._fail(job, exc.rule, {"provider": job.provider, "code": ""})
                    return
            delay = self.backoff.delay(min(job.polls + 1, 6), self.rng, exc.retry_after)
            await self.jobs.update(
                job, now, polls=job.polls + 1, next_poll_at=now + delay, provider_meta=meta
            )
            return
        self.metrics.provider_call(job.provider, "query", "ok")
        if "not_found" in job.provider_meta:
            # The provider knows the task after all (a lagging replica): "no such task"
            # gives the job up only when it comes that many times in a row.
            meta = {k: v for k, v in job.provider_meta.items() if k != "not_found"}
            job = await self.jobs.update(job, now, provider_meta=meta)
        await self.apply_state(job, state, prompted=prompted)

    async def apply_state(self, job: Job, state: TaskState, *, prompted: bool = True) -> Job:
        """Record what the provider said of the task (from a poll or a verified callback).

        ``prompted``: the query was prompted by the provider's callback, so a finish it
        reports happened just now (a scheduled poll's happened since the previous one)."""
        now = self.clock()
        if state.phase is Phase.SUCCEEDED:
            await self.schedule.learn(job, now, prompted)
            job = await self.jobs.transition(
                job,
                JobStatus.SUCCEEDED,
                now,
                result_locator=state.locator,
                progress=100,
                next_delivery_at=now,
            )
            await self._show(job)
            self._wake()
            return job
        if state.phase is Phase.FAILED:
            failure = state.failure
            if failure is not None and failure.kind is ProviderErrorKind.UNSUPPORTED:
                return await self._elsewhere(job, failure)
            rule = failure.rule if failure else "provider.failed"
            code = failure.provider_code if failure else None
            await self._fail(job, rule, {"provider": job.provider or "", "code": code or ""})
            return job
        # Only a task still running is asked again: a finished one books no query (due plan).
        next_poll = now + self.schedule.next_poll(job, now)
        status = JobStatus.RUNNING if state.phase is Phase.RUNNING else job.status
        progress = None if state.progress is None else max(0, min(99, state.progress))
        if not can_transition(job.status, status) and status is not job.status:
            raise ValueError(f"job {job.id}: {job.status.value} -> {status.value} is not allowed")
        src, dst = job.status.value, status.value
        record = PollRecord(job.id, src, dst, job.polls + 1, next_poll, progress, now)
        if not await self.writes(record):
            raise StaleTransition(job.id, job.status)
        job = job.evolved(
            status=status,
            polls=record.polls,
            next_poll_at=next_poll,
            progress=job.progress if progress is None else progress,
            updated_at=now,
        )
        await self._show(job)
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
        await self._show(job)
        self._wake()
        return job
