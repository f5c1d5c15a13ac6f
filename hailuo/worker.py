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

Submissions go through ``providers.resilience`` (one limiter and one circuit
breaker per provider). A queued job goes to the first provider in order that
can serve its spec, has not been given up for it, and whose circuit is not
open; when that provider has no free submission slot the job waits in line
(its status shows the queue position), it is never sent further down the
order for a rate limit. Before acceptance a job moves on from a provider
that rejected the key or is out of balance (at once, and the admins are told
through the log and a metric), whose circuit opened, or that kept failing
for ``failover_patience``; the last capable provider is retried until the
queue deadline instead. A job a provider accepted is never sent elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from hailuo import capabilities
from hailuo.clock import Clock
from hailuo.delivery import Downloader, DownloadError, plan_delivery
from hailuo.errors import ProviderError, ProviderErrorKind
from hailuo.metrics import Metrics
from hailuo.moderation import counts_as_strike, record_strike
from hailuo.notify import Notifier, PostFailed, StatusView, UploadTooLarge
from hailuo.retry import Backoff, poll_interval
from hailuo.spec import JobSpec
from hailuo.status import JobStatus
from providers.base import Phase, PreparedInput, Provider, TaskState
from providers.resilience import AccountAlerts, CircuitState, Resilience
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
    not_found_limit: int = 5  # consecutive "no such task" answers before the job is given up
    status_edit_interval: float = 10.0  # progress-only edits, per job
    old_card_age: float = 3600.0  # an older card is edited on state changes only (30046)
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
        submit_caps: Mapping[str, int | None] | None = None,
        serves: Callable[[str, JobSpec], bool] | None = None,
        callback_url: Callable[[str, int], str | None] | None = None,
        downloaders: Mapping[str, Downloader] | None = None,
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
        #: Each provider's submission limiter (fixed caps, else learned) and circuit breaker.
        self.resilience = Resilience(
            clock, providers, caps=submit_caps, on_circuit_change=self._circuit_changed
        )
        # Looked up at call time, so the capability tables are always the current ones.
        self.serves = serves or (lambda name, spec: capabilities.can_serve(name, spec))
        self.callback_url = callback_url
        #: Per-provider downloaders: the demo's files come from our own loopback server.
        self.downloaders = dict(downloaders or {})
        self.alerts = AccountAlerts(clock, on_alert=self._alerted)
        self._busy: set[int] = set()
        self._background: set[asyncio.Future[None]] = set()
        self._wake = asyncio.Event()
        self._shown: dict[int, tuple[tuple[JobStatus, int | None, int | None], float]] = {}
        self._slots = asyncio.Semaphore(config.concurrency)
        #: Work run at the start of every tick (the approval queue's expiry and posts).
        self.sweeps: list[Callable[[], Awaitable[None]]] = []

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
        for job in await self.jobs.open_jobs():
            if job.id in self._busy:
                continue
            if job.status is JobStatus.QUEUED:
                action = self._admit(job, now)
                if action is None:
                    position += 1
                    steps.append(self._start(job, self._show(job, position)))
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
            await self._deliver(job)

    # -- submit ----------------------------------------------------------------------------

    def _candidates(self, job: Job) -> list[str]:
        """Providers in order that can serve the job and that it has not given up on."""
        given_up = job.provider_meta.get("given_up", [])
        return [
            name
            for name in self.order
            if name in self.providers and name not in given_up and self.serves(name, job.spec)
        ]

    def _admit(self, job: Job, now: float) -> Coroutine[Any, Any, None] | None:
        """What a queued job does now: be submitted, fail, or (None) keep waiting in line."""
        if job.next_attempt_at > now:
            return None
        # Counted from when the job joined the queue (a held job: from its approval).
        if now - float(job.provider_meta.get("queued_at", job.created_at)) > (
            self.config.queue_deadline
        ):
            return self._fail(job, NO_PROVIDER, {})
        candidates = self._candidates(job)
        if not candidates:
            return self._fail(job, NO_PROVIDER, {})
        name = self.resilience.admit(candidates)
        if name is None:
            return None  # every candidate is open-circuited, or the first healthy one is full
        return self._submit(job, name)

    async def _submit(self, job: Job, name: str) -> None:
        prepared = await self.prepare(job)
        url = self.callback_url(name, job.id) if self.callback_url else None
        if url:
            prepared = dataclasses.replace(prepared, callback_url=url)
        job = await self.jobs.transition(
            job,
            JobStatus.SUBMITTING,
            self.clock(),
            provider=name,
            submit_attempts=job.submit_attempts + 1,
        )
        try:
            receipt = await self.providers[name].submit(prepared)
        except ProviderError as exc:
            await self._submit_refused(job, name, exc)
            return
        except Exception:
            # An adapter bug after the call began: the body may have landed, so this is
            # handled like an unknown outcome, never sent again.
            log.exception("submit crashed %s", job.log_context())
            lost = ProviderError(
                ProviderErrorKind.UNKNOWN_OUTCOME, provider=name, detail="adapter error"
            )
            await self._submit_refused(job, name, lost)
            return
        now = self.clock()
        # The task id is stored before anything else happens.
        job = await self.jobs.transition(
            job,
            JobStatus.SUBMITTED,
            now,
            provider_task_id=receipt.task_id,
            provider_meta={**job.provider_meta, **receipt.meta},
            submitted_at=now,
            next_poll_at=now + self.config.poll_seconds,
        )
        self.resilience.record_submit(name, None)
        self.metrics.provider_call(name, "submit", "ok")
        log.info("submitted %s", job.log_context())
        await self._show(job)

    async def _submit_refused(self, job: Job, name: str, exc: ProviderError) -> None:
        now = self.clock()
        self.resilience.record_submit(name, exc)
        self.metrics.provider_call(name, "submit", exc.kind.value)
        log.warning("submit refused %s: %s (%s)", job.log_context(), exc, exc.detail)
        if exc.kind is ProviderErrorKind.UNKNOWN_OUTCOME:
            # The body may have landed: handled exactly like a crash in ``submitting``.
            await self._fail(job, INTERRUPTED_SUBMIT, {"provider": name})
            return
        if not exc.retryable:
            # About the request itself: every provider serves the same model and would refuse it.
            await self._fail(job, exc.rule, {"provider": name, "code": exc.provider_code or ""})
            return
        account = exc.kind in (ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE)
        if account:
            self.alerts.report(name, exc.kind)
        meta = dict(job.provider_meta)
        first_failure = dict(meta.get("first_failure", {}))
        if exc.kind is not ProviderErrorKind.RATE_LIMITED:
            first_failure.setdefault(name, now)
            meta["first_failure"] = first_failure
        others = [other for other in self._candidates(job) if other != name]
        patience_over = now - first_failure.get(name, now) >= self.config.failover_patience
        # A rate limit never moves or fails a job; an outage moves it only when there
        # is somewhere to go (the last provider is retried until the queue deadline).
        give_up = account or (
            exc.kind is not ProviderErrorKind.RATE_LIMITED and patience_over and bool(others)
        )
        if give_up:
            meta["given_up"] = [*meta.get("given_up", []), name]
            log.warning("moving %s on from %s", job.log_context(), name)
        if give_up or (others and not self.resilience.breaker(name).available()):
            delay = 0.0  # the next provider at once (an open circuit is skipped by admit)
        else:
            delay = self.backoff.delay(job.submit_attempts, self.rng, exc.retry_after)
        job = await self.jobs.transition(
            job,
            JobStatus.QUEUED,
            now,
            provider=None,
            provider_meta=meta,
            next_attempt_at=now + delay,
        )
        if give_up and not others:
            await self._fail(job, NO_PROVIDER, {})
            return
        self.wake()

    def _alerted(self, provider: str, kind: ProviderErrorKind) -> None:
        self.metrics.provider_call(provider, "admin_alert", kind.value)

    def _circuit_changed(self, provider: str, state: CircuitState) -> None:
        self.metrics.provider_call(provider, "circuit", state.value)

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
            if exc.kind in (ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE):
                self.alerts.report(job.provider, exc.kind)
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
            video = await self.downloaders.get(job.provider, self.downloader).fetch(url)
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
        if counts_as_strike(rule):
            await self._strike(job)
        await self._show(job)

    async def _strike(self, job: Job) -> None:
        """A provider's content refusal counts against the member (at most once per job);
        at the server's threshold they are blocked. Audited, so the log channel hears of it."""
        try:
            outcome = await asyncio.shield(
                record_strike(
                    self.jobs.db,
                    self.clock,
                    guild_id=job.guild_id,
                    user_id=job.user_id,
                    job_id=job.id,
                )
            )
        except Exception:  # the job has ended either way; a lost strike is only logged
            log.exception("could not record a strike for %s", job.log_context())
            return
        if outcome.newly_blocked:
            log.info("blocked after %d strikes %s", outcome.strikes, job.log_context())

    async def _show(self, job: Job, position: int | None = None) -> None:
        """Edit the status message on a change of state; progress and queue position
        changes at most every ~10 s; nothing when nothing visible changed."""
        now = self.clock()
        seen = (job.status, position, job.progress)
        last = self._shown.get(job.id)
        if last is not None:
            if last[0] == seen:
                return
            if last[0][0] is job.status and now - last[1] < self.config.status_edit_interval:
                return
            if last[0][0] is job.status and now - job.created_at > self.config.old_card_age:
                return  # Discord caps edits of hour-old messages (a job held for approval)
        self._shown[job.id] = (seen, now)
        if job.status.terminal:
            self._shown.pop(job.id, None)
        await self.notifier.show_status(StatusView(job=job, queue_position=position))
