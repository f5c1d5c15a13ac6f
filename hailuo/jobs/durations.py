"""How long a video takes at its provider, measured by this bot: the card's ETA.

A job's run time is from the provider's acceptance (``submitted_at``) to its
success. The book keeps the last few run times per model x resolution x duration
and answers with their median, so one slow outlier does not move the card's ETA; a
kind never seen yet gets a prior (a few minutes, longer for 1080P and 10 s).

Kept in one small module, keyed the same way a learned poll schedule would key
its durations, so the two can share one book. Seeded at start-up from the stored
history of delivered jobs (``seed``) so a restart does not forget what it learnt.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from hailuo.model.spec import JobSpec

#: The run times kept per kind: enough for a steady median, few enough to follow a change.
KEEP = 15
#: The prior's seconds per second of video, by resolution (a 6 s 768P video: ~3 minutes).
PER_SECOND = {"512P": 20.0, "720P": 25.0, "768P": 25.0, "1080P": 45.0}
#: Added to every prior: the provider's queue and the upload of the result.
PRIOR_BASE = 30.0
#: A run time outside this range is a measurement error (a clock jump), not a run.
PLAUSIBLE = (1.0, 6 * 3600.0)

Kind = tuple[str, str, int]


def kind_of(spec: JobSpec) -> Kind:
    """The key durations are kept under: model x resolution x duration."""
    return (spec.model, spec.resolution, spec.duration)


def prior(spec: JobSpec) -> float:
    """Seconds a kind never measured is expected to take."""
    return PRIOR_BASE + PER_SECOND.get(spec.resolution, 30.0) * spec.duration


class DurationBook:
    """Recent measured run times per kind, and the expected run time of a spec."""

    def __init__(self, *, keep: int = KEEP) -> None:
        self.keep = keep
        self._seen: dict[Kind, deque[float]] = {}

    def record(self, spec: JobSpec, seconds: float) -> None:
        """One finished run; implausible values are ignored."""
        if not PLAUSIBLE[0] <= seconds <= PLAUSIBLE[1]:
            return
        self._seen.setdefault(kind_of(spec), deque(maxlen=self.keep)).append(seconds)

    def seed(self, runs: Iterable[tuple[JobSpec, float]]) -> None:
        """Runs from the stored history, oldest first."""
        for spec, seconds in runs:
            self.record(spec, seconds)

    def expected(self, spec: JobSpec) -> float:
        """Seconds from acceptance to success: the recent median, else the prior."""
        seen = self._seen.get(kind_of(spec))
        if not seen:
            return prior(spec)
        return float(statistics.median(seen))

    def measured(self, spec: JobSpec) -> int:
        """How many runs of this kind the book holds."""
        return len(self._seen.get(kind_of(spec), ()))


class RunHistory(Protocol):
    async def recent_runs(self, limit: int) -> list[tuple[JobSpec, float]]:
        """Run times of the latest delivered jobs, oldest first."""
        ...


class DurationSeed:
    """A worker sweep that fills the book once, at the first tick, from the stored history."""

    def __init__(self, history: RunHistory, book: DurationBook, *, limit: int = 500) -> None:
        self.history = history
        self.book = book
        self.limit = limit
        self.done = False

    async def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        self.book.seed(await self.history.recent_runs(self.limit))
