"""When to ask a provider about a task: near its expected finish, learned from this bot's jobs.

A fixed poll spends most of its calls on tasks that cannot be done yet: a 240 s task
polled every 20 s is asked 12 times, 11 of them too early. Tasks of one kind (provider x
model x resolution x duration) take a similar time, so this bot learns that time from
its own finished jobs (an exponentially weighted mean and mean deviation, stored in
``learned_durations``) and plans the queries around it:

- nothing is asked before the earliest plausible finish (``mean - 2 x spread``);
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
    """How long a kind of task takes: its mean, its mean deviation, how many were seen."""

    mean: float
    spread: float
    samples: int = 0

    @property
    def earliest(self) -> float:
        return max(0.0, self.mean - 2 * self.spread)

    @property
    def latest(self) -> float:
        return self.mean + 2 * self.spread


PRIOR = Estimate(PRIOR_MEAN, PRIOR_SPREAD)


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

    def first(self, estimate: Estimate, *, called_back: bool = False) -> float:
        """Seconds after the submission of the first status query."""
        if called_back:
            return max(self.shortest, estimate.latest + self.net_margin)
        return max(self.shortest, min(estimate.earliest + self.gap, estimate.latest))

    def next(self, estimate: Estimate, age: float, *, called_back: bool = False) -> float:
        """Seconds from now (``age`` after the submission) to the next status query."""
        if called_back:
            if age < estimate.latest + self.net_margin:
                return max(self.shortest, estimate.latest + self.net_margin - age)
            return self.slowest
        first = self.first(estimate)
        if age < first:
            return max(self.shortest, first - age)
        if age <= 2 * estimate.latest + self.gap:
            return max(self.shortest, self.gap)
        # Far beyond what this kind takes: the provider is slow today, widen the pace.
        return max(self.shortest, min(self.slowest, self.gap * age / (2 * estimate.latest)))


class Durations:
    """The learned duration of each kind of task, updated as each one ends.

    An exponentially weighted mean and mean absolute deviation: recent tasks count most,
    so a provider that slows down is followed within a few jobs; the first sample of a
    kind replaces the prior's mean and keeps half its spread."""

    def __init__(self, *, weight: float = 0.2, prior: Estimate = PRIOR) -> None:
        self.weight = weight
        self.prior = prior
        self._known: dict[str, Estimate] = {}

    def load(self, known: dict[str, tuple[float, float, int]]) -> None:
        self._known = {key: Estimate(m, s, n) for key, (m, s, n) in known.items()}

    def estimate(self, key: str) -> Estimate:
        return self._known.get(key, self.prior)

    def learn(self, key: str, seconds: float) -> Estimate:
        """Fold one finished task's duration in; the new estimate (to be stored)."""
        seconds = max(0.0, seconds)
        old = self._known.get(key)
        if old is None:
            new = Estimate(seconds, self.prior.spread / 2, 1)
        else:
            w = self.weight
            mean = (1 - w) * old.mean + w * seconds
            spread = (1 - w) * old.spread + w * abs(seconds - old.mean)
            new = Estimate(mean, spread, old.samples + 1)
        self._known[key] = new
        return new
