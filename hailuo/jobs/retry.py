"""Retry as a pure decision: how long to wait before the next attempt, or give up.

No I/O and no clock: the caller passes the attempt number and a random
source, so a table of cases tests it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 2.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.25  # +/- this fraction, so many jobs do not retry in step

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        spread = raw * self.jitter
        delay = raw + rng.uniform(-spread, spread)
        if retry_after is not None:
            # The provider said when; never come back earlier than that.
            delay = max(delay, retry_after)
        return max(0.0, delay)


def poll_interval(age: float, shortest: float) -> float:
    """The gap between two status queries of one task widens as the task ages."""
    if age < 120:
        return shortest
    if age < 600:
        return max(shortest, min(2 * shortest, 30.0))
    return max(shortest, min(4 * shortest, 60.0))


@dataclass(frozen=True)
class PacedByAge:
    """Retry pacing on a budget of time: the wait grows with the time already spent.

    A delivery is retried until the provider's file is gone (hours), not for a
    count of tries, so the pace comes from the work's age: about ``fraction`` of
    the time already spent, never under ``shortest`` and never over ``cap``, with
    jitter so many jobs hit by one outage do not come back in step.
    """

    shortest: float = 5.0
    fraction: float = 0.25
    cap: float = 300.0
    jitter: float = 0.25

    def delay(self, age: float, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before the next try of work that began ``age`` seconds ago."""
        raw = min(self.cap, max(self.shortest, max(0.0, age) * self.fraction))
        spread = raw * self.jitter
        delay = raw + rng.uniform(-spread, spread)
        if retry_after is not None:
            # The other side said when; never come back earlier than that.
            delay = max(delay, retry_after)
        return max(0.0, delay)
