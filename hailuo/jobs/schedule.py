"""When to ask a provider about a task: near its expected finish, learned from this bot's jobs.

A fixed poll spends most of its calls on tasks that cannot be done yet: a 240 s task
polled every 20 s is asked 12 times, 11 of them too early. Tasks of one kind (provider x
model x resolution x duration) take a similar time, so this bot learns that time from
its own finished jobs (the most recent durations of each kind, stored in
``learned_durations``) and plans the queries around it:

- nothing is asked before the earliest plausible finish (about the 10th percentile);
- the first query comes one ``gap`` after that (or at the latest plausible finish when
  the kind is that regular), then one every ``gap`` through the expected window: a
  finish waits ``gap / 2`` on average, the same as a fixed 20 s poll's 10 s;
- a task late beyond its window is asked at a widening pace, up to ``slowest``.

A task whose provider calls back when it ends is polled only as a slow safety net:
the first query after the latest plausible finish plus ``net_margin``, then every
``slowest``; the callback prompts the query that sees the finish.

``PollPlan`` and ``Durations`` are pure (no clock, no I/O); ``TaskSchedule`` puts them to
work for the worker and keeps the learned figures in the database.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hailuo.model.job import Job
from hailuo.model.spec import JobSpec

#: The constants are written for the production pace (``poll_seconds`` 5 s); a faster
#: pace (tests, simulators) shrinks them in proportion.
PRODUCTION_POLL_SECONDS = 5.0
#: A sane prior before any job of a kind finished: Hailuo-02 tasks take one to a few minutes.
PRIOR_MEAN = 90.0
PRIOR_SPREAD = 45.0


@dataclass(frozen=True)
class Estimate:
    """How long a kind of task takes: the window its finishes fall in, and its middle."""

    earliest: float
    latest: float
    samples: int = 0

    @property
    def middle(self) -> float:
        return (self.earliest + self.latest) / 2


#: No Hailuo-02 video is made in under 30 s; few take over 3 minutes.
PRIOR = Estimate(30.0, PRIOR_MEAN + 2 * PRIOR_SPREAD)


def duration_key(provider: str, spec: JobSpec) -> str:
    """The kind of a task: what makes its duration at the provider similar to another's."""
    return f"{provider}|{spec.model}|{spec.resolution}|{spec.duration}"


@dataclass(frozen=True)
class PollPlan:
    """The pacing rule (seconds); ``shortest`` is the floor of any wait."""

    gap: float = 18.0
    shortest: float = 5.0
    slowest: float = 60.0
    net_margin: float = 30.0
    lead: float = 9.0

    def first(self, estimate: Estimate, *, called_back: bool = False, dither: float = 0.0) -> float:
        """Seconds after the submission of the first status query.

        ``dither`` (-1 to 1, drawn per job) moves it by up to ``lead`` either way, so the
        jobs of one kind are not all asked on the same grid: a finish is then learned
        to within a gap from many phases, not rounded to the same few points."""
        if called_back:
            return max(self.shortest, estimate.latest + self.net_margin)
        base = min(estimate.earliest + self.lead, estimate.latest)
        return max(self.shortest, base + dither * self.lead)

    def next(self, estimate: Estimate, age: float, *, called_back: bool = False) -> float:
        """Seconds from now (``age`` after the submission) to the next status query."""
        if called_back:
            if age < estimate.latest + self.net_margin:
                return max(self.shortest, estimate.latest + self.net_margin - age)
            return self.slowest
        first = self.first(estimate, dither=-1.0)
        if age < first:
            return max(self.shortest, first - age)
        if age <= 2 * estimate.latest + self.gap:
            return max(self.shortest, self.gap)
        # Far beyond what this kind takes: the provider is slow today, widen the pace.
        return max(self.shortest, min(self.slowest, self.gap * age / (2 * estimate.latest)))


class Durations:
    """The learned duration of each kind of task: the most recent ``window`` finishes.

    The estimate is the 10th to 90th percentile of those (order-free: a batch submitted
    together finishes shortest first, which would drag a running average to its slowest
    members), padded by ``pad`` (the prior's spread) divided by the number of samples, so one job
    is trusted a little and twenty much more. A provider that slows down is followed
    within a window."""

    def __init__(
        self, *, window: int = 20, prior: Estimate = PRIOR, pad: float = PRIOR_SPREAD
    ) -> None:
        self.window = window
        self.prior = prior
        self.pad = pad
        self._recent: dict[str, list[float]] = {}

    def load(self, known: dict[str, list[float]]) -> None:
        self._recent = {key: list(values)[-self.window :] for key, values in known.items()}

    def recent(self, key: str) -> list[float]:
        return list(self._recent.get(key, []))

    def estimate(self, key: str) -> Estimate:
        recent = self._recent.get(key)
        if not recent:
            return self.prior
        ordered = sorted(recent)
        n = len(ordered)
        pad = self.pad / n
        low = ordered[int(0.1 * (n - 1))]
        high = ordered[-1 - int(0.1 * (n - 1))]
        return Estimate(max(0.0, low - pad), high + pad, n)

    def learn(self, key: str, seconds: float) -> list[float]:
        """Add one finished task's duration; the kind's recent durations (to be stored)."""
        recent = self._recent.setdefault(key, [])
        recent.append(max(0.0, seconds))
        del recent[: -self.window]
        return list(recent)


class DurationBook(Protocol):
    """Where the learned durations are kept (``storage.jobs.JobRepository``)."""

    async def durations(self) -> dict[str, list[float]]: ...

    async def put_duration(self, key: str, recent: list[float], now: float) -> None: ...


class TaskSchedule:
    """The worker's status-query times: the plan, the learned durations, and their store."""

    def __init__(
        self,
        book: DurationBook,
        rng: random.Random,
        *,
        poll_seconds: float,
        callback_url: Callable[[str, int], str | None] | None = None,
    ) -> None:
        unit = poll_seconds / PRODUCTION_POLL_SECONDS
        self.book = book
        self.rng = rng
        self.plan = PollPlan(
            gap=18.0 * unit,
            lead=9.0 * unit,
            shortest=poll_seconds,
            slowest=60.0 * unit,
            net_margin=30.0 * unit,
        )
        self.durations = Durations(
            prior=Estimate(PRIOR.earliest * unit, PRIOR.latest * unit), pad=PRIOR_SPREAD * unit
        )
        #: Whether a provider is given a callback for a job (then polls are only a net).
        self.callback_url = callback_url
        self._loaded = False

    async def load(self) -> None:
        """Read what earlier processes learned (once)."""
        if not self._loaded:
            self._loaded = True
            self.durations.load(await self.book.durations())

    def estimate(self, provider: str, job: Job) -> Estimate:
        return self.durations.estimate(duration_key(provider, job.spec))

    def called_back(self, provider: str, job: Job) -> bool:
        return self.callback_url is not None and bool(self.callback_url(provider, job.id))

    def first_poll(self, provider: str, job: Job, called_back: bool) -> float:
        """Seconds from the submit to the first query (a dither drawn per job)."""
        dither = self.rng.uniform(-1.0, 1.0)
        estimate = self.estimate(provider, job)
        return self.plan.first(estimate, called_back=called_back, dither=dither)

    def next_poll(self, job: Job, now: float) -> float:
        """Seconds from ``now`` to the job's next query."""
        assert job.provider is not None
        age = now - (job.submitted_at or job.created_at)
        called_back = self.called_back(job.provider, job)
        return self.plan.next(self.estimate(job.provider, job), age, called_back=called_back)

    async def learn(self, job: Job, now: float, prompted: bool) -> None:
        """Add a finished task's duration to its kind's recent ones, and store them.

        A finish seen by a poll happened since the previous query (the job's last update,
        or its submission), and at most one ``gap`` ago: the middle of that is the
        estimate (a first query that finds the task done thus still lets the estimate
        move earlier). A callback's (``prompted``) is exact."""
        if job.provider is None or job.submitted_at is None:
            return
        finished = now
        if not prompted:
            previous = job.updated_at if job.polls > 0 else job.submitted_at
            finished = now - min(self.plan.gap, max(0.0, now - previous)) / 2
        key = duration_key(job.provider, job.spec)
        recent = self.durations.learn(key, finished - job.submitted_at)
        await self.book.put_duration(key, recent, now)
