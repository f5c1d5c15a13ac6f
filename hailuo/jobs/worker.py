"""The job's life after creation: submit, follow, deliver, settle; and recovery at start-up.

``tick()`` takes one step of every job that is due and returns; ``run()`` loops without
waiting for a slice's slowest step. Every step writes its intent before the side effect
and its outcome after, each as a guarded transition, so a crash or a second worker at
any point loses nothing and repeats nothing that costs money:

- ``submitting`` is written before the provider is called; a job found there
  at start-up is failed and refunded, never sent again (design, "The job's life").
- a delivery attempt is counted before posting; a job found with attempts but
  no posted message id is first looked for in the channel (plus the nonce
  Discord deduplicates on), so it is never posted twice.

This module schedules the steps and follows submitted tasks; the steps with rules of
their own are beside it: ``submitting`` (provider choice, failover and refusals),
``delivering`` (the exactly-once post), ``failures`` (ending a job) and ``cards`` (the
throttled status edits), with ``steps`` holding what they share (``WorkerConfig``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hailuo.jobs.background import Background
from hailuo.jobs.budget import budgets_for
from hailuo.jobs.cards import StatusCards
from hailuo.jobs.cooldown import Cooldown
from hailuo.jobs.delivering import Deliverer
from hailuo.jobs.deps import WorkerDeps as WorkerDeps  # re-exported: imported from here
from hailuo.jobs.due_plan import DuePlan
from hailuo.jobs.durations import PRIOR_SPREAD, DurationBook
from hailuo.jobs.failures import Failures
from hailuo.jobs.following import PROVIDER_TIMEOUT as PROVIDER_TIMEOUT  # re-exported
from hailuo.jobs.following import Follower
from hailuo.jobs.grouped import Grouped
from hailuo.jobs.guild_alerts import tell_guild
from hailuo.jobs.inflight import InFlight
from hailuo.jobs.leases import Leases
from hailuo.jobs.resilience import AccountAlerts, Resilience
from hailuo.jobs.retry import Backoff
from hailuo.jobs.schedule import PRODUCTION_POLL_SECONDS, TaskSchedule
from hailuo.jobs.steps import StepKit
from hailuo.jobs.steps import WorkerConfig as WorkerConfig  # re-exported: imported from here
from hailuo.jobs.submitting import INTERRUPTED_SUBMIT, Submitter
from hailuo.logs import run_for_job
from hailuo.model.errors import ProviderErrorKind
from hailuo.model.job import Job
from hailuo.model.provider import TaskState
from hailuo.model.status import JobStatus
from storage.jobs import StaleTransition

log = logging.getLogger(__name__)

#: Polls and deliveries read and started per round at most, due first (10,000 in slices).
BATCH = 128
#: Queue-position edits go to the first few queued jobs of each channel only: a move
#: further back in line is not worth an edit of every waiting card at every tick.
QUEUE_CARDS_PER_CHANNEL = 5
#: The shortest wait after a round short of a slice, in ``poll_seconds`` (50 ms at 5 s): jobs
#: falling due one by one are claimed dozens at a time, not each in a claim (a write).
ROUND_GAP = 0.01
#: Poll steps under way per query slot: a step holds its slot only while it asks, and
#: spends the rest reading and writing, so one per slot would leave the slots idle.
STEPS_PER_QUERY_SLOT = 4
FOLLOWED = (JobStatus.SUBMITTED, JobStatus.RUNNING)  # the states a status query is for
Action = Coroutine[Any, Any, None]


class Worker:
    def __init__(self, deps: WorkerDeps) -> None:
        jobs, clock, config, notifier = deps.storage.jobs, deps.clock, deps.config, deps.notifier
        self.jobs = jobs
        self.providers = providers = dict(deps.providers)
        self.order = order = list(deps.order)
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
        #: The one learned duration per kind: the first query's time and the card's ETA.
        unit = config.poll_seconds / PRODUCTION_POLL_SECONDS
        self.durations = (
            deps.durations if deps.durations is not None else DurationBook(pad=PRIOR_SPREAD * unit)
        )
        self._cards_seen: Grouped[tuple[int, str]] = Grouped(jobs.set_cards_seen, lambda s: s[0])
        self.cards = StatusCards(
            notifier,
            clock,
            edit_interval=config.status_edit_interval,
            old_card_age=config.old_card_age,
            remember=self._remember_card,
            durations=self.durations,
        )
        #: Each provider's status queries a second (``jobs.budget``): over it, a due job
        #: waits, and is asked in due order when the budget has room again.
        self.budgets = budgets_for(
            providers,
            deps.status_budgets,
            deps.capabilities,
            pace=PRODUCTION_POLL_SECONDS / config.poll_seconds,
            now=clock(),
        )
        #: When each task is asked: near its learned finish, as its budget can (``due_plan``).
        self.schedule = TaskSchedule(
            jobs,
            deps.rng,
            poll_seconds=config.poll_seconds,
            book=self.durations,
            callback_url=deps.callback_url,
            due=DuePlan(lambda name: self.budgets.rate(name)),  # the budgets of the day
        )
        self._more, self._read_at = False, 0.0  # a full slice; when the last one was read
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
        self.follower = Follower(kit, alerts=self.alerts, schedule=self.schedule, wake=self.wake)
        self.deliverer = Deliverer(
            kit,
            notifier=notifier,
            downloader=deps.downloader,
            downloaders=deps.downloaders,
            shrinker=deps.shrinker,
            capabilities=deps.capabilities,
        )
        self._busy: set[int] = set()
        self.cooldown = Cooldown(deps.rng, unit)  # jobs whose step crashed, held back a while
        self._background = Background(self._poll_now)  # prompted queries, alerts
        self._steps = InFlight(room=BATCH // 2, on_empty=self.wake)  # ``run``'s steps
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(config.concurrency)
        #: Poll steps at once, each in one of the follower's query slots while it asks only.
        self._query_slots = asyncio.Semaphore(config.query_concurrency * STEPS_PER_QUERY_SLOT)
        #: Work run at the start of every tick (the approval queue's expiry and posts).
        self.sweeps: list[Callable[[], Awaitable[None]]] = []

    async def _remember_card(self, job_id: int, seen: str) -> None:
        """What a card shows, stored with the others edited meanwhile (one transaction)."""
        await self._cards_seen((job_id, seen))

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
        """Take the due steps until ``stop`` is set, then let the ones under way finish.

        Unlike ``tick``, a round does not wait for its steps (``jobs.inflight``). Cancelled,
        it cancels the steps under way and gives their leases back."""
        try:
            while not stop.is_set():
                await self._round()
            await self._steps.settle()
            await self.leases.release_finished()
        except asyncio.CancelledError:
            await self._steps.cancel()
            await self.leases.release_finished()  # else they would wait to lapse
            raise

    async def _round(self) -> None:
        """Start what is due, then wait for room or the next due time (failures logged)."""
        self._wake.clear()  # a wake from here on (a step that ended, a submit) is seen
        try:
            await self._take(self._steps.add)  # each step followed as it starts
            if self._more:
                await self._steps.room()  # a full slice was taken: the rest is due too
                return
            wait = await self._next_wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker round failed; continuing")
            wait = self._idle_wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def _idle_wait(self) -> float:
        return max(0.01, min(self.config.poll_seconds, 1.0))

    async def _next_wait(self) -> float:
        """Seconds until the next round: the next due time after the last read (what was due
        then is under way or waits for a budget), capped by the idle wait; ``ROUND_GAP`` least."""
        now, wait = self.clock(), self._idle_wait()
        spent = self.budgets.spent(now)
        if spent:
            wait = min(wait, self.budgets.ready_in(now, spent))
        due = await self.jobs.next_due(self._read_at)
        if due is not None:
            wait = min(wait, due - now)
        held = self.cooldown.ends_in(now)  # a crashed step's job, due again after its wait
        if held is not None:
            wait = min(wait, held)
        return max(self.config.poll_seconds * ROUND_GAP, wait)

    async def tick(self) -> None:
        """Take one due step of every open job (up to ``BATCH`` of them, due first),
        concurrently, and wait for them all.

        Queued jobs are admitted in id order, synchronously, before any step runs, so
        the rate limiter's slots go first come, first served and each waiting job's
        queue position is the number of queued jobs before it plus one.
        """
        steps: list[asyncio.Future[None]] = []
        try:
            await self._take(steps.append)
        finally:  # the steps started before a failure run to their end all the same
            await asyncio.gather(*steps)
        await self.leases.release_finished()

    async def _take(self, started: Callable[[asyncio.Future[None]], None]) -> None:
        """Claim the due work (the steps under way here left out) and start its steps, each
        handed to ``started`` as it starts (a failure part-way loses none of them)."""
        await self.leases.release_finished()  # first: an ended step may be claimed anew
        for sweep in self.sweeps:
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep %r failed; continuing", sweep)
        await self.schedule.load()
        await self.submitter.shared.pull()
        now = self._read_at = self.clock()
        position = 0
        in_line: dict[int, int] = {}
        forecast = self.submitter.forecast(now)
        # Only what is due (the schedule's indexes), never every open job.
        busy = self._busy | self.cooldown.held(now) if self.cooldown else self._busy
        due = await self.leases.claim_due(BATCH, now, self.budgets.spent(now), busy)
        self._more = sum(job.status is not JobStatus.QUEUED for job in due) >= BATCH
        held = False  # a queued job whose step still runs (``run``) holds the line behind it
        for job in due:
            if job.id in busy:  # a queued job's step under way holds the line, a crashed one not
                held = held or (job.id in self._busy and job.status is JobStatus.QUEUED)
                continue
            if job.status is JobStatus.QUEUED:
                action = None if held else self.submitter.admit(job, now)
                if action is None:
                    position += 1
                    in_line[job.channel_id] = in_line.get(job.channel_id, 0) + 1
                    if in_line[job.channel_id] <= QUEUE_CARDS_PER_CHANNEL:
                        eta = forecast.eta(job)
                        started(self._start(job, self.cards.show(job, position, eta)))
                else:
                    started(self._start(job, action))
            elif self._due(job, now) and self._affordable(job, now):
                slots = self._slots if job.status is JobStatus.SUCCEEDED else self._query_slots
                started(self._start(job, self._follow(job), slots, claimed=True))
            else:
                self.leases.finished(job.id)  # not its time (or its budget's): given back

    def poll_soon(self, job_id: int, provider: str) -> None:
        """Query one task now, in the background (a provider's callback said it changed)."""
        self._background.poll_soon(job_id, provider)

    async def finish_submits(self, within: float) -> bool:
        """At a stop: wait for the submits under way (``Submitter.finish``); True: none left."""
        return await self.submitter.finish(within)

    async def drain(self) -> None:
        """Wait for the background queries started by ``poll_soon``, and the alerts."""
        await self._background.drain()

    async def _poll_now(self, job_id: int, provider: str) -> None:
        job = await self.jobs.get(job_id)
        if job is None or job.provider != provider:
            return
        if job.id in self._busy:  # its step's own query may have gone out before the finish
            self._background.hold(job.id, provider)
            return
        now = self.clock()
        if job.status not in FOLLOWED or self.cooldown.holds(job.id, now):
            return  # not followed now, or its last step crashed and it waits its backoff
        if not self.budgets.take(provider, now):
            # Over budget: due now, so the tick asks it in due order when there is room.
            if job.next_poll_at > now:
                with contextlib.suppress(StaleTransition):  # it moved on meanwhile
                    await self.jobs.update(job, now, next_poll_at=now)
            self.wake()
            return
        await self._start(job, self.follower.poll(job, prompted=True), self._query_slots)

    def _due(self, job: Job, now: float) -> bool:
        if job.status is JobStatus.SUBMITTING:
            return True  # claimed only once the lease of the process that sent it lapsed
        if job.status in FOLLOWED:
            return job.next_poll_at <= now
        if job.status is JobStatus.SUCCEEDED:
            return job.next_delivery_at <= now
        return False

    def _affordable(self, job: Job, now: float) -> bool:
        """A delivery always; a status query if its provider's budget has one left now
        (else the job stays due and is asked at a later tick, earliest due first)."""
        if job.status is JobStatus.SUCCEEDED or job.provider is None:
            return True
        return self.budgets.take(job.provider, now)

    def _start(
        self,
        job: Job,
        action: Action,
        slots: asyncio.Semaphore | None = None,
        *,
        claimed: bool = False,
    ) -> asyncio.Future[None]:
        self._busy.add(job.id)
        return run_for_job(job, self._guarded(job, action, slots or self._slots, claimed))

    async def _guarded(
        self, job: Job, action: Action, slots: asyncio.Semaphore, claimed: bool
    ) -> None:
        try:
            async with slots, self.leases.step(job, claimed=claimed) as ours:
                if ours:  # else another process has it, or took this step meanwhile
                    await action
                    self.cooldown.passed(job.id)
        except StaleTransition:
            log.info("job %d moved by someone else; skipping this step", job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            wait = self.cooldown.crashed(job.id, self.clock())
            log.exception("step failed for %s; again in %.1f s", job.log_context(), wait)
        finally:
            action.close()  # a step cancelled before it began must not warn "never awaited"
            self._busy.discard(job.id)
            self._background.step_ended(job.id)  # a callback that came meanwhile: asked now

    async def _follow(self, job: Job) -> None:
        if job.status in FOLLOWED:
            await self.follower.poll(job)
        elif job.status is JobStatus.SUCCEEDED:
            await self.deliverer.deliver(job)
        elif job.status is JobStatus.SUBMITTING:
            await self._interrupted(job)

    async def apply_state(self, job: Job, state: TaskState, *, prompted: bool = True) -> Job:
        """Record what the provider said of the task (``following.Follower.apply_state``)."""
        return await self.follower.apply_state(job, state, prompted=prompted)

    def _alerted(self, provider: str, kind: ProviderErrorKind) -> None:
        self.metrics.provider_call(provider, "admin_alert", kind.value)

    def _guild_alerted(self, guild_id: int, provider: str, kind: ProviderErrorKind) -> None:
        """Post the server's alert in the background (``drain`` waits for it)."""
        self._background.spawn(tell_guild(self.storage, self.notifier, guild_id, provider, kind))
