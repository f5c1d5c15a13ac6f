"""A model of a provider's rate limiting, driving ``SubmitLimiter`` as the worker does.

Jobs wait in line, every free slot is taken at once, each request is answered
after a latency, and the provider refuses with a rate-limit answer during a
storm, at random (a sprinkle), or when its own sliding minute is full. Used by
``tests/test_ratelimit.py`` and ``bench/ratelimit.py``; nothing sleeps.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from hailuo.jobs.limiter import WINDOW, SubmitLimiter
from tests.support import FakeClock


@dataclass
class ModelProvider:
    """Answers submissions: refused in a storm, at random, or over its own per-minute limit."""

    clock: FakeClock
    limit: int | None = None  # its own sliding-minute limit (None: only storms and sprinkles)
    storm: tuple[float, float] = (0.0, 0.0)  # [start, end) in seconds since the model began
    sprinkle: float = 0.0
    seed: int = 1
    started: float = 0.0
    window: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.started = self.clock()

    def accepts(self) -> bool:
        now = self.clock()
        while self.window and self.window[0] <= now - WINDOW:
            self.window.popleft()
        since = now - self.started
        stormy = self.storm[0] <= since < self.storm[1]
        full = self.limit is not None and len(self.window) >= self.limit
        if stormy or full or self.rng.random() < self.sprinkle:
            return False
        self.window.append(now)
        return True


@dataclass
class Run:
    started: float
    sent: list[float]
    accepted: list[float]
    refused: list[float]

    def accepted_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.accepted if self.started + start < t <= self.started + end)


def drive(
    limiter: SubmitLimiter,
    provider: ModelProvider,
    clock: FakeClock,
    *,
    minutes: float,
    demand: float = 30.0,
    latency: float = 1.0,
    step: float = 0.5,
) -> Run:
    """Jobs arrive at ``demand`` a minute (20 already waiting); the limiter paces them."""
    started = clock()
    run = Run(started, [], [], [])
    waiting = 20
    arrivals = started
    in_flight: deque[float] = deque()
    while clock() < started + minutes * 60:
        while arrivals <= clock():
            waiting += 1
            arrivals += 60 / demand
        while in_flight and in_flight[0] <= clock():
            in_flight.popleft()
            if provider.accepts():
                limiter.succeeded()
                run.accepted.append(clock())
            else:
                limiter.rate_limited(retry_after=2)
                run.refused.append(clock())
                waiting += 1  # back in line, never failed
        while waiting and limiter.acquire():
            waiting -= 1
            run.sent.append(clock())
            in_flight.append(clock() + latency)
        clock.advance(step)
    return run


def most_in_a_window(times: list[float]) -> int:
    """The most events in any half-open 60 s window (t - 60, t]."""
    ordered = sorted(times)
    best = 0
    first = 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - WINDOW:
            first += 1
        best = max(best, last - first + 1)
    return best
