"""When to ask a provider about a task: near its expected finish, learned from this bot's jobs.

A fixed poll spends most of its calls on tasks that cannot be done yet: a 240 s task
polled every 20 s is asked 12 times, 11 of them too early. Tasks of one kind (model x
resolution x duration) take a similar time, so this bot learns that time from its own
finished jobs (``hailuo.jobs.durations``, the same book the cards' ETA reads) and plans
the queries around it:

- nothing is asked before the earliest plausible finish (about the 10th percentile);
- the first query comes one ``gap`` after that (or at the latest plausible finish when
  the kind is that regular), then one every ``gap`` through the expected window: a
  finish waits ``gap / 2`` on average, the same as a fixed 20 s poll's 10 s;
- a task late beyond its window is asked at a widening pace, up to ``slowest``;
- a regular kind (a learned window at most 1.5 gaps wide: finishes within about one gap,
  blurred by the polls that saw them) is asked once, half a gap after its window's
  middle, so a finish still waits half a gap on average; a late one gets follow-ups
  every half gap; one job in ten (``explore``; one in twenty for a kind whose budget
  is one call) is asked earlier, so a provider that got faster is noticed (a
  query at the end sees every finish). What such a one query sees is learned by a draw
  over the gap before it (``PollPlan.seen``), not at its middle, which would squeeze the
  window to a point;
- each kind has a budget of calls: a quarter of what a fixed 20 s poll (MiniMax's own
  MCP server's) makes for a job of its length (``budget``). A short kind whose budget is
  one call is asked once while its window is up to two gaps wide (two queries would be
  half of the fixed poll's); a long kind spread over several gaps, with calls to spare,
  is asked at a tighter gap, down to half of it (``paced``), so it waits less.

A task whose provider calls back when it ends is polled only as a slow safety net:
the first query after the latest plausible finish plus ``net_margin``, then every
``slowest``; the callback prompts the query that sees the finish.

``PollPlan`` is pure (no clock, no I/O); ``TaskSchedule`` puts it to work for the worker
with the learned book, and stores what it learns.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from hailuo.jobs.due_plan import DuePlan
from hailuo.jobs.durations import DurationBook, DurationStore, Estimate, duration_key, load_book
from hailuo.model.job import Job

#: The constants are written for the production pace (``poll_seconds`` 5 s); a faster
#: pace (tests, simulators) shrinks them in proportion, the prior's window with them.
PRODUCTION_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class PollPlan:
    """The pacing rule (seconds); ``shortest`` is the floor of any wait."""

    gap: float = 18.0
    shortest: float = 5.0
    slowest: float = 60.0
    net_margin: float = 30.0
    lead: float = 9.0
    #: The share of a regular kind's jobs asked earlier, by up to a ``gap`` (``first``).
    explore: float = 0.1
    #: The fixed poll a kind's calls are held against (MiniMax's MCP server asks every
    #: 20 s), and the share of its calls a kind may spend (``budget``).
    reference: float = 20.0
    share: float = 0.25

    def at_pace(self, unit: float, *, shortest: float) -> PollPlan:
        """This plan at ``unit`` times the production pace, its floor ``shortest``."""
        return dataclasses.replace(
            self,
            gap=self.gap * unit,
            shortest=shortest,
            slowest=self.slowest * unit,
            net_margin=self.net_margin * unit,
            lead=self.lead * unit,
            reference=self.reference * unit,
        )

    def regular(self, estimate: Estimate) -> bool:
        """Whether a learned kind's finishes fit in about one ``gap``.

        A finish seen by a poll is learned to within half a gap either way (``seen``), so
        the learned window (10th to 90th percentile, padded) of finishes that really spread
        over one gap is wider than a gap; at 1.5 gaps a kind whose finishes spread over
        two (a 120 s class at +-15 %) is not taken for one (it would wait too long)."""
        if estimate.samples == 0:
            return False
        width = estimate.latest - estimate.earliest
        # A kind whose budget is one call: two queries would be half of the fixed poll's.
        return width <= 1.5 * self.gap or (self.one_call(estimate) and width <= 2 * self.gap)

    def budget(self, estimate: Estimate) -> float:
        """The status calls a job of this kind may cost: ``share`` of what the fixed
        ``reference`` poll asks about a task of the window's middle (a finish at ``t`` is
        seen by its ``ceil(t / reference)``-th query: ``t / reference + 0.5`` on average)."""
        return (estimate.middle / self.reference + 0.5) * self.share

    def one_call(self, estimate: Estimate) -> bool:
        """Whether the kind's ``budget`` is one call at most: its one query spends it all."""
        return self.budget(estimate) <= 1.0

    def exploring(self, estimate: Estimate) -> float:
        """The share of a regular kind's jobs asked early (``first``): ``explore``, halved for
        a kind whose budget is one call (``one_call``): an early query that finds the task
        running costs a second one; a faster provider is still noticed, in about twice as
        many jobs."""
        return self.explore / 2 if self.one_call(estimate) else self.explore

    def drawn_first(
        self, estimate: Estimate, rng: random.Random, *, called_back: bool = False
    ) -> float:
        """``first`` for one job, its dither and whether it explores drawn from ``rng``."""
        dither = rng.uniform(-1.0, 1.0)
        explore = rng.random() < self.exploring(estimate)
        return self.first(estimate, called_back=called_back, dither=dither, explore=explore)

    def paced(self, estimate: Estimate) -> PollPlan:
        """This plan at the gap a spread kind can afford: the queries after the first one
        cost about ``(latest - earliest) / 2 / gap`` a job (a finish falls in the window's
        middle on average), so a long kind with calls to spare in its ``budget`` is asked
        more often, down to half a ``gap`` (a finish then waits a quarter of it); a regular
        kind, a kind never measured, or one without calls to spare keeps this plan."""
        if estimate.samples == 0 or self.regular(estimate):
            return self
        spare = self.budget(estimate) - 1.0
        if spare <= 0:
            return self
        gap = max(self.gap / 2, min(self.gap, (estimate.latest - estimate.earliest) / 2 / spare))
        if gap >= self.gap:
            return self
        return dataclasses.replace(self, gap=gap, lead=self.lead * gap / self.gap)

    def once(self, estimate: Estimate) -> float:
        """A regular kind's one query: half a gap after the middle of its window (the end of
        the gap its finishes fall in), a finish waits half a gap on average, as a fixed
        20 s poll's 10 s."""
        return min(estimate.latest, estimate.middle + self.gap / 2)

    def seen(self, estimate: Estimate, previous: float, now: float, draw: float) -> float:
        """The run time to learn from a task seen finished at ``now`` (seconds after the
        submission) by a query after one at ``previous`` that saw it running.

        Close queries (at most a ``gap`` apart): the middle between them, so a first
        query that finds the task done still lets the estimate move earlier. One query
        long after the previous, within the window (a regular kind's one query at the
        end of its gap): the finish is anywhere in the last gap or back to the window's
        start, whichever is longer; it is drawn there (``draw``, 0 to 1), as its middle
        would squeeze the learned window to one point and pull it earlier job after job."""
        since = max(0.0, now - previous)
        if since <= self.gap or now > estimate.latest:
            # (a query past the window, after a long pause: the last gap's middle)
            return now - min(since, self.gap) / 2
        low = max(previous, min(now - self.gap, estimate.earliest))
        return low + draw * (now - low)

    def first(
        self,
        estimate: Estimate,
        *,
        called_back: bool = False,
        dither: float = 0.0,
        explore: bool = False,
    ) -> float:
        """Seconds after the submission of the first status query.

        ``dither`` (-1 to 1, drawn per job) moves it by up to ``lead`` either way, so the
        jobs of one kind are not all asked on the same grid: a finish is then learned
        to within a gap from many phases, not rounded to the same few points."""
        if called_back:
            return max(self.shortest, estimate.latest + self.net_margin)
        if self.regular(estimate):
            # A regular kind is asked once; a few of its jobs earlier (``explore``), so a
            # provider that got faster is noticed (a query at the end sees every finish).
            early = self.gap * abs(dither) if explore else 0.0
            return max(self.shortest, self.once(estimate) - early)
        base = min(estimate.earliest + self.lead, estimate.latest)
        return max(self.shortest, base + dither * self.lead)

    def next(self, estimate: Estimate, age: float, *, called_back: bool = False) -> float:
        """Seconds from now (``age`` after the submission) to the next status query."""
        if called_back:
            if age < estimate.latest + self.net_margin:
                return max(self.shortest, estimate.latest + self.net_margin - age)
            return self.slowest
        if self.regular(estimate):
            once = self.once(estimate)
            if age < once - self.shortest / 2:
                return max(self.shortest, once - age)
            if age <= estimate.latest + self.gap:
                # a finish later than the kind's usual: short follow-ups through its window
                return max(self.shortest, self.gap / 2)
        first = self.first(estimate, dither=-1.0)
        if age < first:
            return max(self.shortest, first - age)
        if age <= 2 * estimate.latest + self.gap:
            return max(self.shortest, self.gap)
        # Far beyond what this kind takes: the provider is slow today, widen the pace.
        return max(self.shortest, min(self.slowest, self.gap * age / (2 * estimate.latest)))


class TaskSchedule:
    """The worker's status-query times: the plan, and the one learned book (shared with the
    cards' ETA, ``hailuo.jobs.durations``) with its store."""

    def __init__(
        self,
        store: DurationStore,
        rng: random.Random,
        *,
        poll_seconds: float,
        book: DurationBook | None = None,
        callback_url: Callable[[str, int], str | None] | None = None,
        due: DuePlan | None = None,
    ) -> None:
        self.unit = poll_seconds / PRODUCTION_POLL_SECONDS
        #: The queries booked per provider, so a next query's time is one its status
        #: budget can serve (``jobs.due_plan``); None: as the plan wishes.
        self.due = due
        self.store = store
        self.rng = rng
        self.plan = PollPlan().at_pace(self.unit, shortest=poll_seconds)
        self.durations = book if book is not None else DurationBook()
        #: Whether a provider is given a callback for a job (then polls are only a net).
        self.callback_url = callback_url
        self._loaded = False

    async def load(self) -> None:
        """Read what earlier processes learned (once)."""
        if not self._loaded:
            self._loaded = True
            await load_book(self.store, self.durations)

    def estimate(self, job: Job) -> Estimate:
        """The kind's learned window; the prior's shrinks with a faster pace (tests)."""
        estimate = self.durations.estimate(job.spec)
        return estimate if estimate.samples else estimate.scaled(self.unit)

    def planned(self, job: Job) -> tuple[PollPlan, Estimate]:
        """The plan at the pace the job's kind can afford (``PollPlan.paced``), and its window."""
        estimate = self.estimate(job)
        return self.plan.paced(estimate), estimate

    def called_back(self, provider: str, job: Job) -> bool:
        return self.callback_url is not None and bool(self.callback_url(provider, job.id))

    def first_poll(self, provider: str, job: Job, called_back: bool) -> float:
        """Seconds from the submit to the first query (a dither drawn per job)."""
        plan, estimate = self.planned(job)
        return plan.drawn_first(estimate, self.rng, called_back=called_back)

    def next_poll(self, job: Job, now: float) -> float:
        """Seconds from ``now`` to the job's next query (booked in the due plan)."""
        assert job.provider is not None
        age = now - (job.submitted_at or job.created_at)
        called_back = self.called_back(job.provider, job)
        plan, estimate = self.planned(job)
        wait = plan.next(estimate, age, called_back=called_back)
        if self.due is None:
            return wait
        return self.due.book(job.provider, now + wait, now) - now

    async def learn(self, job: Job, now: float, prompted: bool) -> None:
        """Add a finished task's duration to its kind's recent ones, and store them.

        A finish seen by a poll is placed by ``PollPlan.seen`` (between the previous query,
        the job's last update or its submission, and this one). A callback's
        (``prompted``) is exact."""
        if job.provider is None or job.submitted_at is None:
            return
        seconds = now - job.submitted_at
        if not prompted:
            previous = (job.updated_at if job.polls > 0 else job.submitted_at) - job.submitted_at
            plan, estimate = self.planned(job)  # the gap its queries were asked at
            seconds = plan.seen(estimate, max(0.0, previous), seconds, self.rng.random())
        recent = self.durations.learn(job.spec, seconds, (job.submitted_at, job.id))
        if recent is not None:
            await self.store.put_duration(duration_key(job.spec), recent, now)
