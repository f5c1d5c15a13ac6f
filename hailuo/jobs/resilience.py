"""Shared resilience for every provider: a submission rate limiter and a circuit breaker.

One implementation for all adapters, used by the job worker; adapters only
translate. Retry timing stays the pure decision in ``hailuo.jobs.retry``. Time comes
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hailuo.jobs.limiter import SubmitLimiter
from hailuo.model.errors import ProviderError, ProviderErrorKind

log = logging.getLogger(__name__)

Clock = Callable[[], float]

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

    def snapshot(self) -> dict[str, Any]:
        """Its state (not its settings): shared through the database."""
        return {
            "failures": self.failures,
            "open_for": self._open_for,
            "opened_at": self._opened_at,
            "probe_at": self._probe_at,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take over a ``snapshot`` (another process's)."""
        self.failures = int(state["failures"])
        self._open_for = float(state["open_for"])
        self._opened_at = state["opened_at"]
        self._probe_at = state["probe_at"]

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

    def names(self) -> list[str]:
        """The providers it keeps a limiter and a breaker for."""
        return list(self._health)

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

    def unsent(self, name: str) -> None:
        """A submission ``admit`` let through never went out (the job moved on, or failed
        before the call): its slot and the circuit's probe go back, nothing is learned."""
        health = self.health(name)
        health.limiter.unsent()
        health.breaker.neutral()

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
    """Tell of a rejected key or an empty balance: the operator's log, and each server's admins.

    The operator's log gets an ERROR once per provider per hour. Each server whose
    job met the problem is told once per incident (``on_guild_alert``: its log
    channel): an incident lasts from the first such refusal until the provider
    accepts a submission again (``resolved``), so a hundred jobs refused by an empty
    account make one message in the server, not a hundred.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        every: float = 3600.0,
        on_alert: Callable[[str, ProviderErrorKind], None] | None = None,
        on_guild_alert: Callable[[int, str, ProviderErrorKind], None] | None = None,
    ) -> None:
        self.clock = clock
        self.every = every
        self.on_alert = on_alert
        self.on_guild_alert = on_guild_alert
        self._last: dict[str, float] = {}
        #: Provider -> the servers told of its open incident.
        self._told: dict[str, set[int]] = {}
        #: Providers whose incident is open.
        self._open: set[str] = set()

    def report(
        self, provider: str, kind: ProviderErrorKind, *, guild_id: int | None = None
    ) -> bool:
        """Log the problem unless this provider's was logged within the hour; True if logged.

        ``guild_id``: the server whose job met it, told once per incident.
        """
        self._open.add(provider)
        if guild_id is not None:
            told = self._told.setdefault(provider, set())
            if guild_id not in told:
                told.add(guild_id)
                if self.on_guild_alert is not None:
                    self.on_guild_alert(guild_id, provider, kind)
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

    def in_trouble(self, provider: str) -> bool:
        """Whether ``provider``'s key or account problem is open (no submission accepted since)."""
        return provider in self._open

    def resolved(self, provider: str) -> None:
        """The provider accepted a submission: its incident, if any, is over."""
        self._open.discard(provider)
        if self._told.pop(provider, None):
            log.info("Provider %s accepts submissions again", provider)
