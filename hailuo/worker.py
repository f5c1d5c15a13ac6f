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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hailuo.clock import Clock
from hailuo.delivery import Downloader, DownloadError, plan_delivery
from hailuo.errors import ProviderError, ProviderErrorKind
from hailuo.metrics import Metrics
from hailuo.notify import Notifier, PostFailed, StatusView, UploadTooLarge
from hailuo.retry import Backoff, poll_interval
from hailuo.status import JobStatus
from providers.base import Phase, PreparedInput, Provider, TaskState
from storage.jobs import Job, JobRepository, StaleTransition

log = logging.getLogger(__name__)

#: The failure rules a member may read (each one has a catalog entry).
INTERRUPTED_SUBMIT = "job.interrupted_submit"
PROVIDER_TIMEOUT = "job.provider_timeout"
NO_PROVIDER = "job.no_provider"
DELIVERY_GAVE_UP = "job.delivery_failed"


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 5.0
    default_upload_limit: int = 10 * 1024 * 1024
    task_deadline: float = 2 * 3600.0  # a task still open after this is given up (refunded)
    queue_deadline: float = 3600.0  # a job no provider accepted within this fails (refunded)
    failover_patience: float = 30.0  # how long one job waits on one unhealthy provider
    max_delivery_attempts: int = 5
    status_edit_interval: float = 10.0  # progress-only edits, per job
    concurrency: int = 16


class Worker:
    def __init__(
        self,
        jobs: JobRepository,
        providers: dict[str, Provider],
        order: list[str],
        *,
        notifier: Notifier,
        downloader: Downloader,
        clock: Clock,
        rng: random.Random,
        metrics: Metrics,
        config: WorkerConfig,
        prepare: Callable[[Job], Awaitable[PreparedInput]],
    ) -> None:
        self.jobs = jobs
        self.providers = providers
        self.order = order
        self.notifier = notifier
        self.downloader = downloader
        self.clock = clock
        self.rng = rng
        self.metrics = metrics
        self.config = config
        self.prepare = prepare
        self.backoff = Backoff()
        self._busy: set[int] = set()
        self._wake = asyncio.Event()
        self._shown: dict[int, tuple[JobStatus, float]] = {}
        self._slots = asyncio.Semaphore(config.concurrency)

    def wake(self) -> None:
        self._wake.set()

    async def recover(self) -> None:
        """At start-up: end each job a crash left in ``submitting``; the rest resume in ``tick``."""
        for job in await self.jobs.by_status(JobStatus.SUBMITTING):
            log.warning("recovering interrupted submit %s", job.log_context())
            await self._fail(job, INTERRUPTED_SUBMIT, {"provider": job.provider or ""})

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
        """Take one due step of every open job, concurrently, and wait for them all."""
        now = self.clock()
        open_jobs = await self.jobs.open_jobs()
        queued = [j for j in open_jobs if j.status is JobStatus.QUEUED]
        steps = []
        for job in open_jobs:
            if job.id in self._busy or not self._due(job, now):
                continue
            self._busy.add(job.id)
            position = queued.index(job) + 1 if job in queued else None
            steps.append(asyncio.ensure_future(self._step(job, position)))
        if steps:
            await asyncio.gather(*steps)

    def _due(self, job: Job, now: float) -> bool:
        if job.status is JobStatus.QUEUED:
            return job.next_attempt_at <= now
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            return job.next_poll_at <= now
        if job.status is JobStatus.SUCCEEDED:
            return job.next_delivery_at <= now
        return False

    async def _step(self, job: Job, position: int | None) -> None:
        try:
            async with self._slots:
                if job.status is JobStatus.QUEUED:
                    await self._submit(job, position)
                elif job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
                    await self._poll(job)
                elif job.status is JobStatus.SUCCEEDED:
                    await self._deliver(job)
        except StaleTransition:
            log.info("job %d moved by someone else; skipping this step", job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("step failed for %s", job.log_context())
        finally:
            self._busy.discard(job.id)

    # -- submit ----------------------------------------------------------------------------

    def _pick_provider(self, job: Job, now: float) -> str | None:
        """The first provider in order this job has not given up on (failover patience)."""
        given_up = job.provider_meta.get("given_up", [])
        for name in self.order:
            if name in self.providers and name not in given_up:
                return name
        return None

    async def _submit(self, job: Job, position: int | None) -> None:
        now = self.clock()
        if now - job.created_at > self.config.queue_deadline:
            await self._fail(job, NO_PROVIDER, {})
            return
        name = self._pick_provider(job, now)
        if name is None:
            await self._fail(job, NO_PROVIDER, {})
            return
        prepared = await self.prepare(job)
        job = await self.jobs.transition(
            job, JobStatus.SUBMITTING, now, provider=name, submit_attempts=job.submit_attempts + 1
        )
        try:
            receipt = await self.providers[name].submit(prepared)
        except ProviderError as exc:
            self.metrics.provider_call(name, "submit", exc.kind.value)
            await self._submit_refused(job, name, exc)
            return
        self.metrics.provider_call(name, "submit", "ok")
        now = self.clock()
        job = await self.jobs.transition(
            job,
            JobStatus.SUBMITTED,
            now,
            provider_task_id=receipt.task_id,
            provider_meta={**job.provider_meta, **receipt.meta},
            submitted_at=now,
            next_poll_at=now + self.config.poll_seconds,
        )
        log.info("submitted %s", job.log_context())
        await self._show(job)

    async def _submit_refused(self, job: Job, name: str, exc: ProviderError) -> None:
        now = self.clock()
        log.warning("submit refused %s: %s (%s)", job.log_context(), exc, exc.detail)
        if exc.kind is ProviderErrorKind.UNKNOWN_OUTCOME:
            # The body may have landed: handled exactly like a crash in ``submitting``.
            await self._fail(job, INTERRUPTED_SUBMIT, {"provider": name})
            return
        if not exc.retryable:
            # About the request itself: every provider serves the same model and would refuse it.
            await self._fail(job, exc.rule, {"provider": name, "code": exc.provider_code or ""})
            return
        meta = dict(job.provider_meta)
        first = meta.setdefault("first_failure", {}).setdefault(name, now)
        give_up = exc.kind in (ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE) or (
            exc.kind is not ProviderErrorKind.RATE_LIMITED
            and now - first >= self.config.failover_patience
        )
        if give_up:
            meta["given_up"] = [*meta.get("given_up", []), name]
        attempt = job.submit_attempts
        delay = 0.0 if give_up else self.backoff.delay(attempt, self.rng, exc.retry_after)
        job = await self.jobs.transition(
            job,
            JobStatus.QUEUED,
            now,
            provider=None,
            provider_meta=meta,
            next_attempt_at=now + delay,
        )
        if give_up and self._pick_provider(job, now) is None:
            await self._fail(job, NO_PROVIDER, {})
            return
        await self._show(job)
        self.wake()

    # -- follow ----------------------------------------------------------------------------

    async def _poll(self, job: Job) -> None:
        now = self.clock()
        assert job.provider is not None and job.provider_task_id is not None
        provider = self.providers.get(job.provider)
        started = job.submitted_at or job.created_at
        if provider is None or now - started > self.config.task_deadline:
            await self._fail(job, PROVIDER_TIMEOUT, {"task_id": job.provider_task_id})
            return
        try:
            state = await provider.query(job.provider_task_id, job.provider_meta)
        except ProviderError as exc:
            self.metrics.provider_call(job.provider, "query", exc.kind.value)
            log.warning("query failed %s: %s (%s)", job.log_context(), exc, exc.detail)
            delay = self.backoff.delay(min(job.polls + 1, 6), self.rng, exc.retry_after)
            await self.jobs.update(job, now, polls=job.polls + 1, next_poll_at=now + delay)
            return
        self.metrics.provider_call(job.provider, "query", "ok")
        await self.apply_state(job, state)

    async def apply_state(self, job: Job, state: TaskState) -> Job:
        """Record what the provider said of the task (from a poll or a verified callback)."""
        now = self.clock()
        started = job.submitted_at or job.created_at
        next_poll = now + poll_interval(now - started, self.config.poll_seconds)
        if state.phase is Phase.SUCCEEDED:
            job = await self.jobs.transition(
                job,
                JobStatus.SUCCEEDED,
                now,
                result_locator=state.locator,
                progress=100,
                next_delivery_at=now,
            )
            await self._show(job)
            self.wake()
            return job
        if state.phase is Phase.FAILED:
            failure = state.failure
            rule = failure.rule if failure else "provider.failed"
            code = failure.provider_code if failure else None
            await self._fail(job, rule, {"provider": job.provider or "", "code": code or ""})
            return job
        status = JobStatus.RUNNING if state.phase is Phase.RUNNING else job.status
        updates: dict[str, Any] = {"polls": job.polls + 1, "next_poll_at": next_poll}
        if state.progress is not None:
            updates["progress"] = max(0, min(99, state.progress))
        if status is not job.status:
            job = await self.jobs.transition(job, status, now, **updates)
        else:
            job = await self.jobs.update(job, now, **updates)
        await self._show(job)
        return job

    # -- deliver ---------------------------------------------------------------------------

    async def _deliver(self, job: Job) -> None:
        now = self.clock()
        if job.delivery_attempts > 0:
            found = await self.notifier.find_delivery(job)
            if found is not None:
                log.info("found an earlier delivery of %s", job.log_context())
                await self._delivered(job, found, job.delivery_kind or "attachment", None)
                return
        if job.delivery_attempts >= self.config.max_delivery_attempts:
            await self._fail(job, DELIVERY_GAVE_UP, {}, to=JobStatus.DELIVERY_FAILED)
            return
        job = await self.jobs.update(job, now, delivery_attempts=job.delivery_attempts + 1)
        assert job.provider is not None and job.result_locator is not None
        try:
            url = await self.providers[job.provider].result_url(
                job.result_locator, job.provider_meta
            )
        except ProviderError as exc:
            log.warning("result URL failed %s: %s", job.log_context(), exc)
            await self._retry_delivery(job)
            return
        try:
            video = await self.downloader.fetch(url)
        except DownloadError as exc:
            log.warning("download failed %s: %s", job.log_context(), exc)
            if exc.too_large:
                link_id = await self._post_link(job, url, "delivery.too_large_to_fetch")
                if link_id is not None:
                    await self._delivered(job, link_id, "link", None)
                return
            await self._retry_delivery(job)
            return
        try:
            limits = [
                job.attachment_limit,
                await self.notifier.guild_upload_limit(job.guild_id),
                self.config.default_upload_limit,
            ]
            plan = plan_delivery(video.size, limits)
            message_id: int | None = None
            kind = "attachment"
            if plan.attach:
                try:
                    message_id = await self.notifier.post_video(job, video.path, video.size)
                except UploadTooLarge:
                    plan = plan_delivery(video.size, [])
            if message_id is None:
                kind = "link"
                message_id = await self._post_link(job, url, plan.reason or "delivery.too_large")
            if message_id is None:
                return
            self.metrics.delivery(kind, video.size)
            await self._delivered(job, message_id, kind, video.size)
        except PostFailed as exc:
            log.warning("posting failed %s: %s", job.log_context(), exc)
            await self._retry_delivery(job)
        finally:
            video.discard()

    async def _post_link(self, job: Job, url: str, reason: str) -> int | None:
        try:
            return await self.notifier.post_link(job, url, reason)
        except PostFailed as exc:
            log.warning("posting a link failed %s: %s", job.log_context(), exc)
            await self._retry_delivery(job)
            return None

    async def _retry_delivery(self, job: Job) -> None:
        now = self.clock()
        fresh = await self.jobs.get(job.id)
        if fresh is None or fresh.status is not JobStatus.SUCCEEDED:
            return
        delay = self.backoff.delay(fresh.delivery_attempts, self.rng)
        await self.jobs.update(fresh, now, next_delivery_at=now + delay)

    async def _delivered(self, job: Job, message_id: int, kind: str, size: int | None) -> None:
        job = await asyncio.shield(
            self.jobs.transition(
                job,
                JobStatus.DELIVERED,
                self.clock(),
                reason="video delivered",
                delivered_message_id=message_id,
                delivery_kind=kind,
                delivery_bytes=size,
            )
        )
        log.info("delivered %s as %s", job.log_context(), kind)
        await self._show(job)

    # -- shared ----------------------------------------------------------------------------

    async def _fail(
        self,
        job: Job,
        rule: str,
        params: dict[str, Any],
        *,
        to: JobStatus = JobStatus.FAILED,
    ) -> None:
        # Shielded: a shutdown in the middle must not leave the credits unsettled.
        job = await asyncio.shield(
            self.jobs.transition(
                job, to, self.clock(), reason=rule, failure_rule=rule, failure_params=params
            )
        )
        log.info("ended %s rule=%s", job.log_context(), rule)
        await self._show(job)

    async def _show(self, job: Job, position: int | None = None) -> None:
        """Edit the status message on a change of state, progress edits at most every ~10 s."""
        now = self.clock()
        last = self._shown.get(job.id)
        if last and last[0] is job.status and now - last[1] < self.config.status_edit_interval:
            return
        self._shown[job.id] = (job.status, now)
        if job.status.terminal:
            self._shown.pop(job.id, None)
        await self.notifier.show_status(StatusView(job=job, queue_position=position))
