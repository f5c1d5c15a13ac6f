"""How many status queries a second each provider is sent: a budget per provider.

A status query costs the provider a request like any other, and providers count them
against one rate limit (Freepik: about 10 a second sustained, providers.md "Limits").
10,000 open jobs, or a restart after an outage, would otherwise ask as fast as the
bot can. So each provider has a budget in queries a second:

- ``<PROVIDER>_STATUS_PER_SECOND`` when the owner set it (used exactly as given);
- else the provider's documented figure (``ProviderCapability.status_per_second``);
- else ``DEFAULT_PER_SECOND``, a sane figure for an API whose limit nobody wrote down.

A documented or default budget is written for the production pace (a 5 s poll);
a faster pace (tests, simulators) compresses time and widens it in proportion, like
every other constant of the schedule (``hailuo.jobs.schedule``).

A budget is a token bucket on the injected clock: ``per_second`` tokens a second,
holding at most one second's worth (at least one token), so any span of ``t`` seconds
sees at most ``per_second * (t + 1)`` queries. A query over budget is not dropped: its
job stays due, and the worker asks it when tokens come back, earliest due first.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping

from hailuo.model.capability import Table

#: Queries a second for a provider whose limit is not documented (providers.md: MiniMax's
#: query endpoint, Novita, odkkk and gpt.ge are [UNKNOWN]). A bot submitting at MiniMax's
#: 20 RPM keeps about 80 tasks open, which need one or two queries a second.
DEFAULT_PER_SECOND = 20.0


class StatusBudget:
    """One provider's token bucket (``per_second`` of ``math.inf`` never holds back)."""

    def __init__(self, per_second: float, now: float) -> None:
        if per_second <= 0:
            raise ValueError("a status budget must be positive")
        self.per_second = per_second
        self.capacity = max(1.0, per_second)
        self._tokens = self.capacity
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_second)
            self._at = now

    def take(self, now: float) -> bool:
        """Spend one query now if the budget has one."""
        if math.isinf(self.per_second):
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def ready_in(self, now: float) -> float:
        """Seconds until the next query may go (0 when one may go now)."""
        if math.isinf(self.per_second):
            return 0.0
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.per_second)


class StatusBudgets:
    """Every provider's budget, and which ones are spent for now."""

    def __init__(
        self,
        per_second: Mapping[str, float],
        now: float,
        *,
        default: float = DEFAULT_PER_SECOND,
    ) -> None:
        self.default = default
        self._start = now
        self._budgets = {name: StatusBudget(rate, now) for name, rate in per_second.items()}

    def budget(self, provider: str) -> StatusBudget:
        found = self._budgets.get(provider)
        if found is None:
            found = self._budgets[provider] = StatusBudget(self.default, self._start)
        return found

    def take(self, provider: str, now: float) -> bool:
        return self.budget(provider).take(now)

    def rate(self, provider: str) -> float:
        """The provider's queries a second (what ``jobs.due_plan`` plans with)."""
        return self.budget(provider).per_second

    def spent(self, now: float) -> Collection[str]:
        """The providers with no query left now (their due jobs are not read this tick)."""
        return sorted(name for name, b in self._budgets.items() if b.ready_in(now) > 0)

    def ready_in(self, now: float, providers: Collection[str]) -> float:
        """Seconds until any of ``providers`` has a query again."""
        return min((self.budget(name).ready_in(now) for name in providers), default=0.0)


def resolve(configured: float | None, documented: float | None, *, pace: float = 1.0) -> float:
    """A provider's budget: the owner's figure as given, else the documented one (or the
    default) widened by ``pace`` (production poll seconds / the bot's poll seconds)."""
    if configured is not None:
        return configured
    return (documented if documented is not None else DEFAULT_PER_SECOND) * max(1.0, pace)


def budgets_for(
    providers: Iterable[str],
    configured: Mapping[str, float | None] | None,
    capabilities: Table,
    *,
    pace: float,
    now: float,
) -> StatusBudgets:
    """Each provider's budget from the owner's settings and the capability table."""
    owner = configured or {}
    rates = {
        name: resolve(
            owner.get(name),
            capabilities[name].status_per_second if name in capabilities else None,
            pace=pace,
        )
        for name in providers
    }
    return StatusBudgets(rates, now, default=resolve(None, None, pace=pace))
