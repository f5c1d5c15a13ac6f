"""Shared resilience for every provider: a submission rate limiter and a circuit breaker.

One implementation for all adapters, used by the job worker; adapters only
translate. Retry timing stays the pure decision in ``hailuo.retry``. Time comes
from the injected clock, so tests move it by hand and nothing here sleeps.

- ``SubmitLimiter``: how fast submissions go to one provider. A fixed
  ``<PROVIDER>_SUBMITS_PER_MINUTE`` is a hard ceiling over a sliding minute;
  beneath it (or with no fixed cap, once the provider has first said "too
  many") the rate adapts both ways, AIMD: a rate-limit answer (429, MiniMax
  1002) halves it at most once a minute and pauses for ``Retry-After``, and
  successes climb it back, quickly to the rate the provider served lately and
  gently beyond. A sliding window, not a plain token bucket: a bucket of N
  tokens refilled at N per minute lets 2N through in one minute at its edge,
  which a fixed cap such as MiniMax's 5 RPM answers with 1002. The class says
  why it is ours and not ``aiolimiter``.
- ``CircuitBreaker``: closed -> open after ``threshold`` consecutive
  provider-side failures (5xx, connect failures, unreadable answers, answers
  that never came); open -> half-open after ``open_seconds``, when one probe
  may go; the probe's success closes it, its failure opens it again for twice
  as long (capped). A rejected key or an empty balance trips it at once for
  longer. Request-side refusals (moderation, invalid parameters) show the
  provider is answering: they reset the count and never open it.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hailuo.errors import ProviderError, ProviderErrorKind

log = logging.getLogger(__name__)

Clock = Callable[[], float]

WINDOW = 60.0

#: Failures that say the provider itself is unwell (they count toward opening the circuit).
BREAKER_FAILURES = frozenset(
    {
        ProviderErrorKind.UNAVAILABLE,
        ProviderErrorKind.BAD_REPLY,
        ProviderErrorKind.UNKNOWN_OUTCOME,
    }
)
#: Refusals about the account: the circuit opens at once, for longer.
ACCOUNT_FAILURES = frozenset({ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE})


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


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed / open / half-open, driven by submission outcomes and the injected clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        name: str = "",
        threshold: int = 3,
        open_seconds: float = 30.0,
        max_open_seconds: float = 300.0,
        account_open_seconds: float = 600.0,
        probe_timeout: float = 120.0,
    ) -> None:
        self.clock = clock
        self.name = name
        self.threshold = threshold
        self.base_open = open_seconds
        self.max_open = max_open_seconds
        self.account_open = account_open_seconds
        self.probe_timeout = probe_timeout
        self.failures = 0
        self._open_for = open_seconds
        self._opened_at: float | None = None
        self._probe_at: float | None = None
        self.on_change: Callable[[str, CircuitState], None] | None = None

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() < self._opened_at + self._open_for:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def reopens_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._open_for - self.clock())

    def available(self) -> bool:
        """Whether a submission may go now (does not claim the half-open probe)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            return False
        return self._probe_at is None or self.clock() - self._probe_at >= self.probe_timeout

    def begin(self) -> None:
        """A submission is going out; in half-open it is the one probe."""
        if self.state is CircuitState.HALF_OPEN:
            self._probe_at = self.clock()

    def success(self) -> None:
        """The provider answered coherently (accepted, or refused the request itself)."""
        was = self.state
        self.failures = 0
        self._opened_at = None
        self._probe_at = None
        self._open_for = self.base_open
        if was is not CircuitState.CLOSED:
            self._changed(CircuitState.CLOSED)

    def neutral(self) -> None:
        """An answer that says nothing of health (rate limited): release a probe, keep state."""
        self._probe_at = None

    def failure(self) -> None:
        """A provider-side failure: count it, or re-open a half-open circuit for longer."""
        state = self.state
        self._probe_at = None
        if state is CircuitState.HALF_OPEN:
            self._open(min(self.max_open, self._open_for * 2))
            return
        if state is CircuitState.OPEN:
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self._open(self.base_open)

    def trip(self, seconds: float | None = None) -> None:
        """Open now (a rejected key or an empty balance), for ``seconds`` or the account time."""
        self._probe_at = None
        self._open(self.account_open if seconds is None else seconds)

    def _open(self, seconds: float) -> None:
        self._opened_at = self.clock()
        self._open_for = seconds
        self._changed(CircuitState.OPEN)

    def _changed(self, state: CircuitState) -> None:
        log.warning("circuit of %s is now %s", self.name or "provider", state.value)
        if self.on_change is not None:
            self.on_change(self.name, state)


@dataclass
class ProviderHealth:
    """One provider's limiter and breaker."""

    limiter: SubmitLimiter
    breaker: CircuitBreaker


class Resilience:
    """The limiter and breaker of every provider, fed with each submission's outcome."""

    def __init__(
        self,
        clock: Clock,
        names: Iterable[str],
        *,
        caps: Mapping[str, int | None] | None = None,
        on_circuit_change: Callable[[str, CircuitState], None] | None = None,
        threshold: int = 3,
        open_seconds: float = 30.0,
    ) -> None:
        self.clock = clock
        self._caps = dict(caps or {})
        self._on_change = on_circuit_change
        self._threshold = threshold
        self._open_seconds = open_seconds
        self._health: dict[str, ProviderHealth] = {}
        for name in names:
            self.health(name)

    def health(self, name: str) -> ProviderHealth:
        found = self._health.get(name)
        if found is None:
            breaker = CircuitBreaker(
                self.clock,
                name=name,
                threshold=self._threshold,
                open_seconds=self._open_seconds,
            )
            breaker.on_change = self._on_change
            found = ProviderHealth(SubmitLimiter(self.clock, fixed=self._caps.get(name)), breaker)
            self._health[name] = found
        return found

    def limiter(self, name: str) -> SubmitLimiter:
        return self.health(name).limiter

    def breaker(self, name: str) -> CircuitBreaker:
        return self.health(name).breaker

    def admit(self, candidates: Iterable[str]) -> str | None:
        """The provider a submission goes to now, with its slot taken; None: wait.

        Candidates come in the owner's order. An open circuit is skipped (the job
        moves on at once); a provider out of submission slots is waited for, never
        skipped, so a rate limit never sends money to a provider later in the order.
        """
        for name in candidates:
            health = self.health(name)
            if not health.breaker.available():
                continue
            if health.limiter.wait() > 0:
                return None
            health.breaker.begin()
            health.limiter.acquire()
            return name
        return None

    def record_submit(self, name: str, error: ProviderError | None) -> None:
        """Feed one submission's outcome (None: accepted) to the provider's limiter and breaker."""
        health = self.health(name)
        if error is None:
            health.breaker.success()
            health.limiter.succeeded()
            return
        if error.kind is ProviderErrorKind.RATE_LIMITED:
            health.limiter.rate_limited(error.retry_after)
            health.breaker.neutral()
            return
        health.limiter.answered()  # a probe sent after a rate-limit answer is back
        if error.kind in ACCOUNT_FAILURES:
            health.breaker.trip()
        elif error.kind in BREAKER_FAILURES:
            health.breaker.failure()
        else:
            # About the request: the provider is up and answering.
            health.breaker.success()


class AccountAlerts:
    """Tell the admins of a rejected key or an empty balance: ERROR once per provider per hour."""

    def __init__(
        self,
        clock: Clock,
        *,
        every: float = 3600.0,
        on_alert: Callable[[str, ProviderErrorKind], None] | None = None,
    ) -> None:
        self.clock = clock
        self.every = every
        self.on_alert = on_alert
        self._last: dict[str, float] = {}

    def report(self, provider: str, kind: ProviderErrorKind) -> bool:
        """Log the problem unless this provider's was logged within the hour; True if logged."""
        now = self.clock()
        last = self._last.get(provider)
        if last is not None and now - last < self.every:
            return False
        self._last[provider] = now
        if kind is ProviderErrorKind.AUTH:
            log.error(
                "Provider %s refused the API key in %s_API_KEY: its jobs go to the next "
                "provider; set a valid key and restart the bot.",
                provider,
                provider.upper(),
            )
        else:
            log.error(
                "Provider %s says the account is out of balance: its jobs go to the next "
                "provider until the account is topped up.",
                provider,
            )
        if self.on_alert is not None:
            self.on_alert(provider, kind)
        return True
