"""Edits of each job's public status message (its card), throttled for Discord's limits.

A change of state is shown at once; progress, queue-position and ETA changes at
most every ``edit_interval`` seconds per job, and on a card older than
``old_card_age`` at most every ``old_card_interval`` seconds (Discord caps edits of
hour-old messages, error 30046), for as long as the job runs. The elapsed time and
the expected end are Discord timestamps, which tick on the member's screen without
an edit; the expected end comes from this bot's own measured run times
(``hailuo.jobs.durations``).

A job may have no known card: ``/hailuo text`` stores the card's id only once the
first answer returned, so a crash in those milliseconds (or a card post that failed)
leaves a job with a channel and no card. Such a job announces its end in its channel
with a new message that mentions the member, once, and that message becomes its card
(``announces_without_card``; the front end posts it). While this process is still
waiting for a job's first answer (``FirstAnswers``) nothing is posted: the answer is
the card, and the command brings it up to date once its id is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from hailuo.clock import Clock
from hailuo.i18n.status_text import eta_minutes
from hailuo.jobs.durations import DurationBook
from hailuo.jobs.notify import Notifier, StatusView
from hailuo.model.job import Job
from hailuo.model.status import JobStatus

log = logging.getLogger(__name__)

#: The failure rule of a job cancelled because its first answer never reached the member
#: (Discord refused it: the 3 seconds had passed). The member saw "did not respond" and
#: was refunded; nothing is announced in the channel about it.
FIRST_ANSWER_MISSED = "job.first_answer_missed"


#: The longest a written-after-the-answer job waits for a burst's other answers to go out.
QUIET_WAIT = 1.0


class FirstAnswers:
    """The interactions whose first answer is on its way in this process: their job has
    no card id stored yet, and the command shows the job on its card once it has. Also the
    commands that have not sent their first answer yet: Discord's 3 seconds are the one
    hard deadline here, so the writes of a burst wait until its answers are out (``quiet``).

    Keyed by the interaction's id, so a command marks it before the job even exists and
    nothing can post a second card in between."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        #: Commands whose first answer is not on its way yet; answers sent but not yet
        #: confirmed; and whether there are none of either.
        self._answering: set[int] = set()
        self._sending: set[int] = set()
        self._quiet = asyncio.Event()
        self._quiet.set()
        #: Jobs answered first and not written yet (a command arriving now answers first).
        self.writes_after = 0

    def arrived(self, interaction_id: int) -> None:
        """A command began: it answers before anything that can wait (``quiet``)."""
        self._answering.add(interaction_id)
        self._quiet.clear()

    def answering(self, interaction_id: int) -> None:
        """The command's first answer is on its way (called just before it is sent)."""
        if interaction_id in self._answering:
            self._answering.discard(interaction_id)
            self._sending.add(interaction_id)

    def answered(self, interaction_id: int) -> None:
        """Discord took the command's first answer, or refused it: nothing waits for it."""
        self._answering.discard(interaction_id)
        self._sending.discard(interaction_id)
        if not self._answering and not self._sending:
            self._quiet.set()

    def others_answering(self, interaction_id: int) -> bool:
        """Whether other commands here still have their first answer to send."""
        return bool(self._answering - {interaction_id})

    async def quiet(self, within: float = QUIET_WAIT) -> None:
        """Wait until every command here had its first answer taken, at most ``within`` s:
        a burst's answers go before its writes, and a steady stream never starves them."""
        if self._quiet.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._quiet.wait()

    def begin(self, interaction_id: int) -> None:
        self._pending.add(interaction_id)

    def end(self, interaction_id: int) -> None:
        self._pending.discard(interaction_id)

    def pending(self, job: Job) -> bool:
        return job.interaction_id is not None and job.interaction_id in self._pending


def announces_without_card(job: Job, answers: FirstAnswers) -> bool:
    """Whether ``job``, which has no card, must tell its member how it ended with a new
    message: it ended, it has a channel, its first answer is not on its way here, and it
    is not a job withdrawn because that answer never reached the member."""
    return (
        job.status_message_id is None
        and job.status.terminal
        and job.channel_id != 0
        and not answers.pending(job)
        and job.failure_rule != FIRST_ANSWER_MISSED
    )


class CardlessJobs(Protocol):
    async def ended_without_card(self, since: float) -> list[Job]:
        """Jobs that ended since ``since`` in a channel, with no card known."""
        ...


class StatusShower(Protocol):
    async def show_status(self, view: StatusView) -> None:
        """Show the job's state to its member (best effort: never raises)."""
        ...


class CardlessSweep:
    """Once, at the worker's first tick: show the jobs that ended without a card shortly
    before a restart (a crash in the first answer's gap after the job had already ended),
    so the front end announces them like any job that ends with no card."""

    def __init__(
        self, jobs: CardlessJobs, status: StatusShower, clock: Clock, *, window: float = 3600.0
    ) -> None:
        self.jobs = jobs
        self.status = status
        self.clock = clock
        self.window = window
        self.done = False

    async def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        for job in await self.jobs.ended_without_card(self.clock() - self.window):
            await self.status.show_status(StatusView(job=job))


class CardBook(Protocol):
    """Where a card posted later is remembered (``storage.jobs.JobRepository``)."""

    async def claim_status_message(self, job_id: int, message_id: int, now: float) -> bool:
        """Store ``message_id`` as the job's card unless it has one; False if it had."""
        ...


#: What a card shows that may change: state, queue position, waiting time (minutes),
#: progress, expected end (minute).
Seen = tuple[JobStatus, int | None, int | None, int | None, int | None]

#: How often a card older than an hour may still be edited while its job runs.
OLD_CARD_INTERVAL = 300.0
#: An expected end closer than this is not moved on the card: it ticks by itself.
ETA_STEP = 60.0


def seen_digest(seen: Seen) -> str:
    """What a card shows, as the short text stored with the job (``jobs.card_seen``)."""
    # The expected end is left out: it moves with the provider's pace at every poll, and
    # a restart must not edit every card whose state, place and progress are unchanged.
    status, position, eta, progress, _ = seen
    parts = (position, eta, progress)
    return "|".join(["-" if part is None else str(part) for part in parts] + [status.value])


#: What ``StatusCards`` remembers of a card redrawn by someone else: equal to no real view.
_STALE: Seen = (None, None, None, None, None)  # type: ignore[assignment]


class StatusCards:
    def __init__(
        self,
        notifier: Notifier,
        clock: Clock,
        *,
        edit_interval: float,
        old_card_age: float,
        remember: Callable[[int, str], Awaitable[None]] | None = None,
        old_card_interval: float = OLD_CARD_INTERVAL,
        durations: DurationBook | None = None,
    ) -> None:
        self.notifier = notifier
        self.clock = clock
        self.edit_interval = edit_interval
        self.old_card_age = old_card_age
        self.old_card_interval = old_card_interval
        self.durations = durations if durations is not None else DurationBook()
        self._shown: dict[int, tuple[Seen, float]] = {}
        #: Stores what a card shows after each edit (``JobStore.set_card_seen``), so the
        #: next process does not edit every card again at its first poll.
        self.remember = remember

    def done_at(self, job: Job, eta: float | None, now: float) -> float | None:
        """When the job's video is expected to be ready (epoch seconds), or None.

        Queued: its wait in line plus a measured run; accepted or running: its
        acceptance plus a measured run. An end already past is unknown, not "now"."""
        run = self.durations.expected(job.spec)
        if job.status is JobStatus.QUEUED:
            return None if eta is None else now + eta + run
        if job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
            start = job.submitted_at if job.submitted_at is not None else now
            if job.progress and job.progress > 5 and job.submitted_at is not None:
                # The provider says how far it is: its own pace beats the book's.
                run = (now - start) * 100 / job.progress
            end = start + run
            return end if end > now else None
        return None

    def stale(self, job_id: int) -> None:
        """The card was drawn anew by someone else (a first answer filling it in after the
        worker already showed it): whatever this process showed there is gone, so the
        next ``show`` edits it, even if nothing changed since. (Not shown yet: nothing
        to draw again, the first ``show`` edits it anyway.)"""
        if job_id in self._shown:
            self._shown[job_id] = (_STALE, 0.0)

    async def show(self, job: Job, position: int | None = None, eta: float | None = None) -> None:
        """Edit the status message on a change of state; progress, queue position and
        waiting time changes at most every ~10 s; nothing when nothing visible changed."""
        now = self.clock()
        done_at = self.done_at(job, eta, now)
        step = None if done_at is None else round(done_at / ETA_STEP)
        seen: Seen = (job.status, position, eta_minutes(eta), job.progress, step)
        last = self._shown.get(job.id)
        if last is None and job.card_seen is not None and job.card_seen == seen_digest(seen):
            # Shown by an earlier process and unchanged since: no edit after a restart.
            self._shown[job.id] = (seen, now)
            return
        if last is not None:
            if last[0] == seen:
                return
            if last[0][0] is job.status and now - last[1] < self.edit_interval:
                return
            if (
                last[0][0] is job.status
                and now - job.created_at > self.old_card_age
                and now - last[1] < self.old_card_interval
            ):
                return  # Discord caps edits of hour-old messages (30046): fewer, not none
        self._shown[job.id] = (seen, now)
        if job.status.terminal:
            self._shown.pop(job.id, None)
        digest = seen_digest(seen)
        # Stored once the edit went out; not when only the expected end moved (it stands).
        moved = last is None or last[0] is _STALE or seen_digest(last[0]) != digest
        shown = None
        if self.remember is not None and not job.status.terminal and moved:
            shown = functools.partial(self._remember, job.id, digest)
        view = StatusView(job, position, eta, done_at, shown)
        await self.notifier.show_status(view)

    async def _remember(self, job_id: int, digest: str) -> None:
        """What the card now shows, stored (best effort: a lost digest costs one edit more
        after a restart, and the card's own edit already went out)."""
        assert self.remember is not None  # ``show`` hands this out only then
        try:
            await self.remember(job_id, digest)
        except Exception:
            log.exception("could not remember what the card of job %d shows", job_id)
