"""How fast submissions go to one provider: AIMD under a sliding-minute ceiling.

Split from ``hailuo.jobs.resilience`` (which combines it with the circuit breaker):
see that module's docstring for the whole design. Time comes from the injected clock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Clock = Callable[[], float]

WINDOW = 60.0


class SubmitLimiter:
    """How fast one provider is sent submissions: AIMD under a sliding-minute ceiling.

    Three counts over the last ``WINDOW`` seconds: every request sent, the requests
    not refused for rate (accepted or still in flight), and the accepted ones.

    - With ``fixed`` (``<PROVIDER>_SUBMITS_PER_MINUTE``) at most that many requests
      are sent in any 60 s window, whatever the provider answers: a hard ceiling,
      never an average, and the rate the limit climbs back to.
    - ``limit`` bounds the requests not refused for rate in any window, and adapts
      both ways (AIMD):

      * multiplicative decrease on a rate-limit answer (429, ``RATE_LIMIT_EXCEEDED``,
        MiniMax 1002): half of what was going through, at most once per window, so a
        burst of answers to requests already in flight counts once; never below the
        floor (``floor_fraction`` of the rate it climbs back to, at least ``floor``).
      * additive increase: from the end of the pause the limit climbs linearly back
        to the rate the provider served lately (the fixed cap, or the most it
        accepted in one window within ``memory_seconds``; a storm, where nothing is
        accepted, does not erase it), at a pace that covers that rate in
        ``recover_seconds``; above it each success adds 1/limit while the limit is
        what holds submissions back (about one more per window of successes), a
        gentle probe that costs one rate-limit answer a minute at a provider's true
        limit. A sprinkle of rate-limit answers among successes thus costs a short
        dip, and the end of a storm is followed by the old rate within a minute.
      * every rate-limit answer pauses all submissions for its ``Retry-After`` (or
        ``default_pause``), doubled for each answer in a row with no success between
        (up to ``storm_pause``, or longer when the provider asks), so a storm is not
        knocked on every two seconds; after it one request goes alone, and the rest
        wait for its answer (or ``probe_timeout``), so a burst is not refused whole.

      Without a fixed cap nothing limits submissions until the first rate-limit
      answer; a learned limit that climbs past ``ceiling`` is lifted again.

    Why not ``aiolimiter`` (evaluated for issue 10): its ``AsyncLimiter`` is a leaky
    bucket read from ``loop.time()``, so it cannot run on the injected clock
    (``hailuo.clock``) the worker and its tests move by hand; its rate is fixed at
    construction, with no decrease, increase or pause; it admits by sleeping inside
    ``acquire()``, while the worker decides admissions synchronously in id order to
    keep the queue first come, first served and to show positions and waiting times;
    and a bucket of N drained at N per minute lets up to 2N through in one sliding
    minute, which a provider's own per-minute cap (MiniMax's 5 RPM) answers with 1002.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        fixed: int | None = None,
        floor: float = 1.0,
        floor_fraction: float = 0.25,
        ceiling: float = 60.0,
        decrease: float = 0.5,
        recover_seconds: float = 30.0,
        default_pause: float = 2.0,
        min_pause: float = 1.0,
        storm_pause: float = 30.0,
        max_pause: float = 300.0,
        memory_seconds: float = 600.0,
        probe_timeout: float = 60.0,
    ) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError("a fixed cap must be at least 1 a minute")
        self.clock = clock
        self.fixed = fixed
        self.min_floor = floor
        self.floor_fraction = floor_fraction
        self.ceiling = ceiling
        self.decrease = decrease
        self.recover_seconds = recover_seconds
        self.default_pause = default_pause
        self.min_pause = min_pause
        self.storm_pause = storm_pause
        self.max_pause = max_pause
        self.memory_seconds = memory_seconds
        self.probe_timeout = probe_timeout
        self._limit: float | None = float(fixed) if fixed is not None else None
        #: (when, accepted in the window then), decreasing: the front is the most the
        #: provider accepted in one window within ``memory_seconds`` (learned mode).
        self._peaks: deque[tuple[float, int]] = deque()
        self._sent: deque[float] = deque()
        self._admitted: deque[float] = deque()
        self._accepted: deque[float] = deque()
        self._paused_until = 0.0
        self._decreased_at: float | None = None
        self._climbing_since: float | None = None  # None: not climbing (no success yet)
        self._streak = 0  # rate-limit answers in a row, with no success between
        self._probe_until = 0.0  # after a rate-limit answer: one request at a time
        self._held_at: float | None = None  # when the limit last held a submission back

    @property
    def learned(self) -> bool:
        return self.fixed is None

    @property
    def limit(self) -> float | None:
        """Submissions allowed per minute right now; None when nothing limits them."""
        self._climb(self.clock())
        return self._limit

    @property
    def target(self) -> float:
        """The rate the limit climbs back to quickly: the fixed cap, or the best served."""
        if self.fixed is not None:
            return float(self.fixed)
        return float(max(1, self._peaks[0][1])) if self._peaks else 1.0

    @property
    def floor(self) -> float:
        """The lowest the limit goes: a share of the rate it climbs back to."""
        return max(self.min_floor, self.floor_fraction * self.target)

    def wait(self) -> float:
        """Seconds until one more submission may go (0: now). Does not take a slot."""
        now = self.clock()
        self._trim(now)
        self._climb(now)
        waits = [0.0, self._paused_until - now]
        if self._streak and now < self._probe_until:
            waits.append(self._probe_until - now)  # the probe's answer is awaited
        if self.fixed is not None:
            waits.append(_slot_wait(self._sent, self.fixed, now))
        if self._limit is not None:
            held = _slot_wait(self._admitted, _allowed(self._limit), now)
            if held > 0:
                self._held_at = now  # a submission waits for this limit: demand is there
            waits.append(held)
        return max(waits)

    def acquire(self) -> bool:
        """Take a slot if one is free now."""
        if self.wait() > 0:
            return False
        now = self.clock()
        self._sent.append(now)
        self._admitted.append(now)
        if self._streak:
            self._probe_until = now + self.probe_timeout
        return True

    def answered(self) -> None:
        """Some other answer came (a 5xx, a refused request): a probe is no longer out."""
        self._probe_until = 0.0

    def unsent(self) -> None:
        """A slot ``acquire`` gave went unused (nothing was sent): it goes back, the latest
        taken for it, and the probe it may have been is no longer out."""
        if self._sent:
            self._sent.pop()
        if self._admitted:
            self._admitted.pop()
        self._probe_until = 0.0

    def succeeded(self) -> None:
        """The provider accepted a submission: climb back, or probe above the known rate."""
        now = self.clock()
        self._trim(now)
        self._climb(now)
        self._accepted.append(now)
        served = len(self._accepted)
        while self._peaks and self._peaks[-1][1] <= served:
            self._peaks.pop()
        self._peaks.append((now, served))
        self._streak = 0
        self._probe_until = 0.0
        if self._limit is None:
            return
        if self._limit < self.target:
            if self._climbing_since is None:
                self._climbing_since = now
            return
        if self._held_at is not None and now - self._held_at < WINDOW:
            # Only while the limit is what holds submissions back: an idle provider's
            # successes are no evidence that it would take more.
            self._limit += 1.0 / self._limit
        self._cap()

    def rate_limited(self, retry_after: float | None = None) -> None:
        """The provider said "too many": pause everyone, and decrease once per window."""
        now = self.clock()
        self._trim(now)
        self._climb(now)
        self._probe_until = 0.0
        asked = self.default_pause if retry_after is None else retry_after
        if now >= self._paused_until:
            # Sent after the last pause ended (not an answer to one already in flight):
            # one more in a row.
            self._streak += 1
        backoff = min(self.storm_pause, asked * 2 ** max(0, self._streak - 1))
        pause = min(self.max_pause, max(self.min_pause, asked, backoff))
        self._paused_until = max(self._paused_until, now + pause)
        if self._admitted:
            # The refused attempt made no video: it holds no adaptive slot. It still
            # counts toward a fixed cap: the provider saw the request.
            self._admitted.pop()
        if self._decreased_at is not None and now - self._decreased_at < WINDOW:
            return  # an answer to a request already in flight, or a probe: the pause only
        # Halve what was going through (the flight size, or the best rate known when a
        # burst has just left the window), not a limit never reached: a 429 after 3
        # submissions says more than a limit of 60.
        going = max(float(len(self._admitted)) + 1, self.target)
        base = going if self._limit is None else min(self._limit, going)
        before = self._limit
        self._limit = max(self.floor, base * self.decrease)
        self._cap()
        self._decreased_at = now
        # The climb back begins when the pause ends (``_climb`` starts it there).
        self._climbing_since = now
        log.warning(
            "provider rate limit: %s -> %.1f submissions a minute (paused %.0f s)",
            "none" if before is None else f"{before:.1f}",
            self._limit or 0.0,
            pause,
        )

    def schedule(self, count: int) -> list[float]:
        """When the next ``count`` submissions could go at today's rate, if none is refused.

        The queue's waiting times are read from here, so they follow the current
        rate: the pause, the fixed cap's window and the adaptive limit (as it is now;
        a climb under way only shortens them).
        """
        now = self.clock()
        self._trim(now)
        self._climb(now)
        sent = list(self._sent)
        admitted = list(self._admitted)
        at = max(now, self._paused_until)
        times: list[float] = []
        for _ in range(count):
            if self.fixed is not None and len(sent) >= self.fixed:
                at = max(at, sent[-self.fixed] + WINDOW)
            if self._limit is not None:
                allowed = _allowed(self._limit)
                if len(admitted) >= allowed:
                    at = max(at, admitted[-allowed] + WINDOW)
            times.append(at)
            sent.append(at)
            admitted.append(at)
        return times

    def snapshot(self) -> dict[str, Any]:
        """What it learned and counted (not its settings): shared through the database."""
        return {
            "limit": self._limit,
            "peaks": [list(peak) for peak in self._peaks],
            "sent": list(self._sent),
            "admitted": list(self._admitted),
            "accepted": list(self._accepted),
            "paused_until": self._paused_until,
            "decreased_at": self._decreased_at,
            "climbing_since": self._climbing_since,
            "streak": self._streak,
            "probe_until": self._probe_until,
            "held_at": self._held_at,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take over a ``snapshot`` (another process's); demand seen here is kept."""
        limit = state["limit"]
        self._limit = None if limit is None else float(limit)
        if self.fixed is not None and self._limit is None:
            self._limit = float(self.fixed)
        self._peaks = deque((float(at), int(n)) for at, n in state["peaks"])
        self._sent = deque(map(float, state["sent"]))
        self._admitted = deque(map(float, state["admitted"]))
        self._accepted = deque(map(float, state["accepted"]))
        self._paused_until = float(state["paused_until"])
        self._decreased_at = state["decreased_at"]
        self._climbing_since = state["climbing_since"]
        self._streak = int(state["streak"])
        self._probe_until = float(state["probe_until"])
        held = [at for at in (self._held_at, state["held_at"]) if at is not None]
        self._held_at = max(held) if held else None

    def _climb(self, now: float) -> None:
        """The additive increase back to ``target``: linear in time since it began."""
        since = self._climbing_since
        if since is None or self._limit is None:
            return
        target = self.target
        start = max(since, self._paused_until)
        if now <= start:
            return
        self._limit = min(target, self._limit + (now - start) * target / self.recover_seconds)
        self._climbing_since = now
        if self._limit >= target:
            self._climbing_since = None

    def _cap(self) -> None:
        if self._limit is None:
            return
        if self.fixed is not None:
            self._limit = min(self._limit, float(self.fixed))
        elif self._limit > self.ceiling:
            self._limit = None  # lifted: the next rate-limit answer teaches it again
            log.info("provider rate limit lifted (past %.0f submissions a minute)", self.ceiling)

    def _trim(self, now: float) -> None:
        for times in (self._sent, self._admitted, self._accepted):
            while times and times[0] <= now - WINDOW:
                times.popleft()
        # The best window is forgotten after ``memory_seconds``, unless nothing newer was
        # accepted since (a storm): then it is still the best guess for the calm after.
        while len(self._peaks) > 1 and self._peaks[0][0] <= now - self.memory_seconds:
            self._peaks.popleft()


def _allowed(limit: float) -> int:
    """Whole submissions a window holds at a (fractional) limit; at least one."""
    return max(1, int(limit + 1e-9))


def _slot_wait(times: deque[float], allowed: int, now: float) -> float:
    """Seconds until a window holding ``times`` has room for one more of ``allowed``."""
    if len(times) < allowed:
        return 0.0
    # The submission that must leave the window before one more fits in it.
    return max(0.0, times[len(times) - allowed] + WINDOW - now)
