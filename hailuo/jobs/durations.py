"""How long a video takes at its provider, learned from this bot's own jobs: one model.

A job's run time is from the provider's acceptance (``submitted_at``) to its
success. Tasks of one kind (model x resolution x duration) take a similar time, so
the book keeps the most recent ``window`` run times of each kind and answers two
questions from the same samples:

- ``estimate``: the window the next finish falls in (the 10th to 90th percentile,
  padded by the prior's spread over the number of samples, so one run is trusted a
  little and twenty much more); the poll schedule (``hailuo.jobs.schedule``) asks
  nothing before its start and ends its tight pace after its end;
- ``expected``: the run time the card shows as its ETA (the recent median, so one
  slow outlier does not move it).

Percentiles and the median are order-free: a batch submitted together finishes
shortest first, which would drag a running average to its slowest members. For the
same reason the window keeps the most recently *submitted* runs, not the last to
finish: of a batch larger than the window, the last finishers are its slowest, and a
window of them alone (narrow, late) once made every query of the kind come after its
latest finish (a 120 s kind waited 18 s on average, against a fixed 20 s poll's 10).
A provider that slows down is followed within a window. A kind never seen yet gets a
prior from sane defaults: no Hailuo-02 video is made in under 30 s, and a 6 s 768P
video takes up to about three minutes (longer for 1080P and 10 s).

The learned samples are stored per kind (``learned_durations``, migration 007) each
time one is added, and read back at start-up (``DurationStore``); kinds stored by an
older version of the bot under a provider prefix are merged into their kind, and
kinds with nothing stored are seeded from the delivered jobs' run times.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from hailuo.model.spec import JobSpec

#: The run times kept per kind: enough for steady percentiles, few enough to follow a change.
WINDOW = 20
#: The prior's seconds per second of video, by resolution (a 6 s 768P video: ~3 minutes).
PER_SECOND = {"512P": 20.0, "720P": 25.0, "768P": 25.0, "1080P": 45.0}
#: Added to every prior: the provider's queue and the upload of the result.
PRIOR_BASE = 30.0
#: No Hailuo-02 video is made in under this (the prior window's start).
PRIOR_EARLIEST = 30.0
#: How far one sample is trusted: the window around it is this wide divided by the samples.
PRIOR_SPREAD = 45.0
#: A run time outside this range is a measurement error (a clock jump), not a run.
PLAUSIBLE = (1.0, 6 * 3600.0)

Kind = tuple[str, str, int]
#: When a run was submitted (seconds, then the job's id): the window keeps the latest.
Submitted = tuple[float, int]
#: The submission of a run read back from storage or seeded: before any learned since.
EARLIER = (float("-inf"), 0)


def kind_of(spec: JobSpec) -> Kind:
    """The key durations are kept under: model x resolution x duration."""
    return (spec.model, spec.resolution, spec.duration)


def duration_key(spec: JobSpec) -> str:
    """The kind as the text it is stored under (``learned_durations.key``)."""
    model, resolution, seconds = kind_of(spec)
    return f"{model}|{resolution}|{seconds}"


def prior(spec: JobSpec) -> float:
    """Seconds a kind never measured is expected to take (its latest plausible finish)."""
    return PRIOR_BASE + PER_SECOND.get(spec.resolution, 30.0) * spec.duration


@dataclass(frozen=True)
class Estimate:
    """How long a kind of task takes: the window its finishes fall in, and its middle."""

    earliest: float
    latest: float
    samples: int = 0

    @property
    def middle(self) -> float:
        return (self.earliest + self.latest) / 2

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.earliest * factor, self.latest * factor, self.samples)


def prior_estimate(spec: JobSpec) -> Estimate:
    """The window of a kind never measured: from the earliest plausible to its prior."""
    return Estimate(PRIOR_EARLIEST, max(PRIOR_EARLIEST, prior(spec)))


def _key_kind(key: str) -> str:
    """A stored key as this version writes it (an older one had a provider in front)."""
    parts = key.split("|")
    return "|".join(parts[-3:])


class DurationBook:
    """The learned run time of each kind: its window for polling, its median for the card."""

    def __init__(self, *, window: int = WINDOW, pad: float = PRIOR_SPREAD) -> None:
        self.window = window
        self.pad = pad
        #: Each kind's run times by submission, oldest first, and those submissions.
        self._recent: dict[str, list[float]] = {}
        self._submitted: dict[str, list[Submitted]] = {}

    def load(self, stored: dict[str, list[float]]) -> None:
        """What earlier processes stored (oldest first), replacing what the book holds."""
        merged: dict[str, list[float]] = {}
        for key, values in stored.items():
            merged.setdefault(_key_kind(key), []).extend(
                float(v) for v in values if PLAUSIBLE[0] <= v <= PLAUSIBLE[1]
            )
        self._recent = {key: values[-self.window :] for key, values in merged.items() if values}
        self._submitted = {key: [EARLIER] * len(values) for key, values in self._recent.items()}

    def seed(self, runs: Iterable[tuple[JobSpec, float]]) -> None:
        """Run times of delivered jobs (oldest first), for kinds nothing was stored for."""
        known = set(self._recent)
        for spec, seconds in runs:
            if duration_key(spec) not in known:
                self.learn(spec, seconds)

    def learn(
        self, spec: JobSpec, seconds: float, submitted: Submitted | None = None
    ) -> list[float] | None:
        """Add one finished run, submitted at ``submitted`` (None: after every run kept);
        the kind's recent run times (to be stored), or None when it is no plausible run or
        was submitted before every run of a full window (ignored)."""
        if not PLAUSIBLE[0] <= seconds <= PLAUSIBLE[1]:
            return None
        key = duration_key(spec)
        recent = self._recent.setdefault(key, [])
        order = self._submitted.setdefault(key, [])
        when = submitted if submitted is not None else (order[-1] if order else EARLIER)
        at = bisect.bisect_right(order, when)
        if at == 0 and len(recent) >= self.window:
            return None
        recent[at:at] = [seconds]
        order[at:at] = [when]
        del recent[: -self.window]
        del order[: -self.window]
        return list(recent)

    def record(self, spec: JobSpec, seconds: float) -> None:
        """``learn`` when the caller does not store the result."""
        self.learn(spec, seconds)

    def recent(self, spec: JobSpec) -> list[float]:
        return list(self._recent.get(duration_key(spec), []))

    def measured(self, spec: JobSpec) -> int:
        """How many runs of this kind the book holds."""
        return len(self._recent.get(duration_key(spec), ()))

    def estimate(self, spec: JobSpec) -> Estimate:
        """The window the kind's next finish falls in (the prior's when never measured)."""
        recent = self._recent.get(duration_key(spec))
        if not recent:
            return prior_estimate(spec)
        ordered = sorted(recent)
        n = len(ordered)
        pad = self.pad / n
        low = ordered[int(0.1 * (n - 1))]
        high = ordered[-1 - int(0.1 * (n - 1))]
        return Estimate(max(0.0, low - pad), high + pad, n)

    def expected(self, spec: JobSpec) -> float:
        """Seconds from acceptance to success for the card: the recent median, else the
        prior (the latest plausible finish: a card does not promise earlier)."""
        recent = self._recent.get(duration_key(spec))
        if not recent:
            return prior_estimate(spec).latest
        ordered = sorted(recent)
        n = len(ordered)
        middle = n // 2
        return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class DurationStore(Protocol):
    """Where the learned run times are kept (``storage.jobs.JobRepository``)."""

    async def durations(self) -> dict[str, list[float]]: ...

    async def put_duration(self, key: str, recent: list[float], now: float) -> None: ...

    async def recent_runs(self, limit: int) -> list[tuple[JobSpec, float]]:
        """Run times of the latest delivered jobs, oldest first."""
        ...


async def load_book(store: DurationStore, book: DurationBook, *, limit: int = 500) -> None:
    """Fill the book at start-up: what was stored per kind, then delivered jobs' run
    times for kinds with nothing stored (a database from before ``learned_durations``)."""
    book.load(await store.durations())
    book.seed(await store.recent_runs(limit))
