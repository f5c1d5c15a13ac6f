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

Pure: no clock and no I/O; ``Durations`` holds the figures, the worker persists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hailuo.model.spec import JobSpec

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
