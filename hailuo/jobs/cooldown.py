"""Jobs whose step crashed, held out of the worker's claims for a while.

A step that raises what no rule expects (a bug, not a ``ProviderError``: those are
retried on the job's own schedule) leaves its job as it was, still due. Claimed again at
once, it would crash again at once, as fast as the loop turns: a status query a few
milliseconds apart, the provider's status budget spent on it, the log flooded. The
worker holds such a job back for a backoff that doubles with each crash in a row
(``retry.Backoff``, in the schedule's unit of time) and forgets it when a step of it
ends well. In memory only: another process, or this one after a restart, tries the job
afresh and holds it back in turn if it crashes there too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hailuo.jobs.retry import Backoff


@dataclass(slots=True)
class _Crashes:
    count: int
    until: float


class Cooldown:
    """Which jobs the worker leaves alone for now, and until when."""

    def __init__(self, rng: random.Random, unit: float = 1.0) -> None:
        self.rng = rng
        #: Seconds per second of ``backoff`` (the schedule's unit: short in tests).
        self.unit = unit
        self.backoff = Backoff()  # 2 s, doubling, up to a minute
        self._jobs: dict[int, _Crashes] = {}

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def crashed(self, job_id: int, now: float) -> float:
        """Hold the job back after a crash of its step; the seconds it waits."""
        crashes = self._jobs.get(job_id)
        count = 1 if crashes is None else crashes.count + 1
        wait = self.backoff.delay(count, self.rng) * self.unit
        self._jobs[job_id] = _Crashes(count, now + wait)
        return wait

    def passed(self, job_id: int) -> None:
        """A step of the job ended well: its next crash starts the backoff over."""
        self._jobs.pop(job_id, None)

    def held(self, now: float) -> set[int]:
        """The jobs still held back at ``now``.

        One whose wait ended long ago is forgotten: it was taken over or ended elsewhere,
        and a crash of it now would be a first one again."""
        forget = now - 2 * self.backoff.cap * self.unit
        for job_id in [j for j, c in self._jobs.items() if c.until < forget]:
            del self._jobs[job_id]
        return {job_id for job_id, crashes in self._jobs.items() if crashes.until > now}

    def holds(self, job_id: int, now: float) -> bool:
        """Whether ``job_id`` is still held back at ``now``."""
        crashes = self._jobs.get(job_id)
        return crashes is not None and crashes.until > now

    def ends_in(self, now: float) -> float | None:
        """Seconds until the first held job may be claimed again (None: none is held)."""
        ends = [c.until for c in self._jobs.values() if c.until > now]
        return min(ends) - now if ends else None
