"""What a job costs and how much a member may spend: the one cost table and the policy rules.

Allowances renew at 00:00 of the server's time zone (UTC until one is
chosen), every day or every Monday; the period key stored with every ledger
entry ties a refund to the period its reservation was made in, so a late
refund never inflates today. Server budgets count by the server's own day
and month. A server's policy is the bot's defaults (the environment)
overlaid with what its admins stored; resolution order:

1. the cost of a job: the server's override for (model, resolution, duration),
   else ``DEFAULT_COSTS``;
2. a member's allowance: the highest of the server's allowance and the
   tiers of the member's roles (boosters hold the server's booster role);
3. every other limit: the server's value, else the bot's default.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from hailuo.clock import Clock
from hailuo.model.errors import UserInputError
from hailuo.model.spec import MODEL_RULES, JobSpec
from hailuo.money.periods import AllowancePeriod as AllowancePeriod  # re-exported
from hailuo.money.periods import Period as Period  # re-exported
from hailuo.money.periods import budget_period as budget_period  # re-exported
from hailuo.money.periods import current_period as current_period  # re-exported
from hailuo.money.periods import local_date as local_date  # re-exported
from hailuo.money.prices import PriceKey
from storage.guilds import GuildConfig
from storage.port import Storage

T = TypeVar("T")
CostKey = tuple[str, str, int]  # (model, resolution, duration)

#: Credits per (resolution, duration): the design's defaults, for every model (no price
#: difference between the models is known; a server overrides per model).
BASE_COSTS: dict[tuple[str, int], int] = {
    ("512P", 6): 1,
    ("512P", 10): 1,
    ("768P", 6): 1,
    ("768P", 10): 2,
    ("1080P", 6): 2,
}

#: Credits per (model, resolution, duration) the model offers. The one cost table.
DEFAULT_COSTS: dict[CostKey, int] = {
    (rule.name, resolution, duration): BASE_COSTS[(resolution, duration)]
    for rule in MODEL_RULES.values()
    for resolution, durations in rule.durations.items()
    for duration in sorted(durations)
}

#: Budget thresholds (per cent) that send a notice to the admins, once each per period.
NOTICE_THRESHOLDS = (80, 100)
#: Upper bounds on what an admin may type, against typos that would burn money.
MAX_CREDITS = 100_000
MAX_JOBS = 1_000
MAX_COOLDOWN_SECONDS = 86_400


def cost_of(spec: JobSpec, costs: Mapping[CostKey, int] | None = None) -> int:
    """The job's credits: the server's override, else the default."""
    key = (spec.model, spec.resolution, spec.duration)
    if costs and key in costs:
        return costs[key]
    return DEFAULT_COSTS[key]


@dataclass(frozen=True)
class QuotaPolicy:
    """A server's limits; the defaults let a new server work with no set-up."""

    daily_credits: int = 10  # each member's allowance per period (a day unless ``period``)
    max_jobs_per_member: int = 2
    max_jobs_per_guild: int = 50
    timezone: str = "UTC"
    period: AllowancePeriod = AllowancePeriod.DAY
    tiers: Mapping[int, int] = field(default_factory=dict)  # role id -> allowance
    daily_budget: int | None = None  # the whole server's credits per day; None: no budget
    monthly_budget: int | None = None
    cooldown_seconds: int = 0  # between two of a member's jobs; 0: off
    costs: Mapping[CostKey, int] = field(default_factory=dict)  # overrides of DEFAULT_COSTS
    notice_channel_id: int | None = None  # where budget notices go
    #: Micro-dollars per video: the providers' declared prices with the server's on top.
    prices: Mapping[PriceKey, int] = field(default_factory=dict)
    #: The configured providers, in failover order: whose prices an estimate reads.
    priced_providers: tuple[str, ...] = ()
    daily_money_budget: int | None = None  # micro-dollars a day for the server; None: none
    monthly_money_budget: int | None = None

    def allowance_for(self, roles: Collection[int] = ()) -> int:
        """The highest of the server's allowance and the member's role tiers."""
        return max([self.daily_credits, *(self.tiers[r] for r in roles if r in self.tiers)])

    def cost(self, spec: JobSpec) -> int:
        return cost_of(spec, self.costs)

    def cost_table(self) -> dict[CostKey, int]:
        return {key: self.costs.get(key, credits) for key, credits in DEFAULT_COSTS.items()}

    def budget(self, scope: str) -> int | None:
        return self.daily_budget if scope == "day" else self.monthly_budget

    def money_budget(self, scope: str) -> int | None:
        return self.daily_money_budget if scope == "day" else self.monthly_money_budget

    def price_table(self) -> dict[PriceKey, int | None]:
        """Every price the configured providers could charge (``None``: nobody stated it)."""
        table: dict[PriceKey, int | None] = {}
        for provider in self.priced_providers:
            for model, resolution, duration in DEFAULT_COSTS:
                key = (provider, model, resolution, duration)
                table[key] = self.prices.get(key)
        return table

    def overlaid(self, stored: GuildConfig) -> QuotaPolicy:
        """These defaults with what a server's admins stored on top (NULL keeps the default)."""
        s = stored.settings
        return QuotaPolicy(
            daily_credits=_pick(s.allowance, self.daily_credits),
            max_jobs_per_member=_pick(s.max_jobs_per_member, self.max_jobs_per_member),
            max_jobs_per_guild=_pick(s.max_jobs_per_guild, self.max_jobs_per_guild),
            timezone=_pick(s.timezone, self.timezone),
            period=AllowancePeriod(s.allowance_period) if s.allowance_period else self.period,
            tiers={**self.tiers, **stored.tiers},
            daily_budget=_pick(s.daily_budget, self.daily_budget),
            monthly_budget=_pick(s.monthly_budget, self.monthly_budget),
            cooldown_seconds=_pick(s.cooldown_seconds, self.cooldown_seconds),
            costs={**self.costs, **stored.costs},
            notice_channel_id=_pick(s.notice_channel_id, self.notice_channel_id),
            prices={**self.prices, **stored.prices},
            priced_providers=self.priced_providers,
            daily_money_budget=_pick(s.daily_money_budget, self.daily_money_budget),
            monthly_money_budget=_pick(s.monthly_money_budget, self.monthly_money_budget),
        )


def _pick(stored: T | None, default: T) -> T:
    return default if stored is None else stored


def thresholds_crossed(before: int, after: int, budget: int) -> list[int]:
    """The notice thresholds that spending from ``before`` to ``after`` reaches."""
    return [t for t in NOTICE_THRESHOLDS if before * 100 < t * budget <= after * 100]


@dataclass(frozen=True)
class Balance:
    """A member's credits in the current period, derived from the ledger."""

    allowance: int
    used: int  # taken by jobs this period (reserved or charged), net of refunds
    reserved: int  # part of ``used`` still held by open jobs
    renews_at: float
    adjusted: int = 0  # granted (+) or taken back (-) by admins, and resets

    @property
    def remaining(self) -> int:
        return max(0, self.allowance + self.adjusted - self.used)


# -- the policy source: defaults overlaid with each server's stored settings -----------------


def check_timezone(name: str) -> str:
    """An IANA zone name (``Europe/Paris``), or UserInputError naming the rule."""
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        examples = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
        raise UserInputError("admin.timezone", name=name[:60], examples=examples) from None
    return name


def timezone_names(prefix: str, limit: int = 25) -> list[str]:
    """Zone names starting with (or containing) ``prefix``, for autocomplete."""
    needle = prefix.strip().lower()
    names = _zone_names()
    starts = [n for n in names if n.lower().startswith(needle)]
    contains = [n for n in names if needle in n.lower() and n not in starts]
    return (starts + contains)[:limit]


@functools.cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def check_range(rule: str, value: int, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise UserInputError(rule, value=value, minimum=minimum, maximum=maximum)
    return value


def check_cost_key(key: CostKey) -> CostKey:
    if key not in DEFAULT_COSTS:
        allowed = [f"{res} {dur} s" for (model, res, dur) in DEFAULT_COSTS if model == key[0]]
        raise UserInputError(
            "admin.cost_key", model=key[0], resolution=key[1], duration=key[2], allowed=allowed
        )
    return key


class GuildPolicies:
    """Each server's ``QuotaPolicy`` (a ``PolicySource``), and the admins' changes to it.

    Every answer comes from storage, so an admin's change applies to the very next
    request; the SQLite engine keeps each server's stored config until it changes
    (``storage.guilds.GuildRepository``), so a request reads no settings at all.
    """

    def __init__(self, storage: Storage, defaults: QuotaPolicy, clock: Clock) -> None:
        self.repo = storage.guilds
        self.blocks = storage.blocks
        self.defaults = defaults
        self.clock = clock
        self._overlaid: dict[int, tuple[GuildConfig, QuotaPolicy]] = {}

    async def __call__(self, guild_id: int) -> QuotaPolicy:
        config = await self.repo.config(guild_id)
        # The same stored config (the repository keeps it until it changes) gives the same
        # policy: overlaid once, not on every request of a busy server.
        known = self._overlaid.get(guild_id)
        if known is not None and known[0] is config:
            return known[1]
        policy = self.defaults.overlaid(config)
        self._overlaid[guild_id] = (config, policy)
        return policy

    async def set_allowance(
        self, guild_id: int, credits: int, period: AllowancePeriod, actor_id: int
    ) -> QuotaPolicy:
        check_range("admin.range.credits", credits, 0, MAX_CREDITS)
        await self.repo.update_settings(
            guild_id,
            actor_id=actor_id,
            now=self.clock(),
            allowance=credits,
            allowance_period=period.value,
        )
        return await self(guild_id)

    async def set_tier(
        self, guild_id: int, role_id: int, credits: int | None, actor_id: int
    ) -> QuotaPolicy:
        if credits is not None:
            check_range("admin.range.credits", credits, 0, MAX_CREDITS)
        await self.repo.set_tier(guild_id, role_id, credits, actor_id=actor_id, now=self.clock())
        return await self(guild_id)

    async def set_budget(
        self, guild_id: int, actor_id: int, *, daily: int | None, monthly: int | None
    ) -> QuotaPolicy:
        """Set either budget; ``0`` removes it, ``None`` leaves it as it is."""
        values: dict[str, int | None] = {}
        for column, value in (("daily_budget", daily), ("monthly_budget", monthly)):
            if value is not None:
                check_range("admin.range.budget", value, 0, MAX_CREDITS * 100)
                values[column] = value or None
        if values:
            await self.repo.update_settings(guild_id, actor_id=actor_id, now=self.clock(), **values)
        return await self(guild_id)

    async def set_money_budget(
        self, guild_id: int, actor_id: int, *, daily: int | None, monthly: int | None
    ) -> QuotaPolicy:
        """Set either money budget in micro-dollars; ``0`` removes it, ``None`` leaves it."""
        values: dict[str, int | None] = {}
        for column, value in (("daily_money_budget", daily), ("monthly_money_budget", monthly)):
            if value is not None:
                values[column] = value or None
        if values:
            await self.repo.update_settings(guild_id, actor_id=actor_id, now=self.clock(), **values)
        return await self(guild_id)

    async def set_price(
        self, guild_id: int, key: PriceKey, micros: int | None, actor_id: int
    ) -> QuotaPolicy:
        """One provider's price of a video here; ``None`` goes back to the declared one."""
        provider, model, resolution, duration = key
        if provider not in self.defaults.priced_providers:
            raise UserInputError(
                "admin.price_provider",
                provider=provider,
                allowed=", ".join(self.defaults.priced_providers),
            )
        check_cost_key((model, resolution, duration))
        await self.repo.set_price(guild_id, key, micros, actor_id=actor_id, now=self.clock())
        return await self(guild_id)

    async def set_timezone(self, guild_id: int, name: str, actor_id: int) -> QuotaPolicy:
        zone = check_timezone(name)
        await self.repo.update_settings(
            guild_id, actor_id=actor_id, now=self.clock(), timezone=zone
        )
        return await self(guild_id)

    async def set_limits(
        self,
        guild_id: int,
        actor_id: int,
        *,
        member_jobs: int | None = None,
        server_jobs: int | None = None,
        cooldown_seconds: int | None = None,
    ) -> QuotaPolicy:
        values: dict[str, int] = {}
        if member_jobs is not None:
            values["max_jobs_per_member"] = check_range(
                "admin.range.jobs", member_jobs, 1, MAX_JOBS
            )
        if server_jobs is not None:
            values["max_jobs_per_guild"] = check_range("admin.range.jobs", server_jobs, 1, MAX_JOBS)
        if cooldown_seconds is not None:
            values["cooldown_seconds"] = check_range(
                "admin.range.cooldown", cooldown_seconds, 0, MAX_COOLDOWN_SECONDS
            )
        if values:
            await self.repo.update_settings(guild_id, actor_id=actor_id, now=self.clock(), **values)
        return await self(guild_id)

    async def set_cost(
        self, guild_id: int, key: CostKey, credits: int | None, actor_id: int
    ) -> QuotaPolicy:
        check_cost_key(key)
        if credits is not None:
            check_range("admin.range.credits", credits, 0, MAX_CREDITS)
        await self.repo.set_cost(guild_id, key, credits, actor_id=actor_id, now=self.clock())
        return await self(guild_id)

    async def set_notice_channel(self, guild_id: int, channel_id: int, actor_id: int) -> None:
        await self.repo.update_settings(
            guild_id, actor_id=actor_id, now=self.clock(), notice_channel_id=channel_id
        )

    async def block(self, guild_id: int, user_id: int, actor_id: int, reason: str) -> None:
        """Refuse the member's new jobs until unblocked (one home for blocks: moderation's)."""
        await self.blocks.block(
            guild_id, user_id, by=actor_id, reason=reason[:200], now=self.clock()
        )

    async def unblock(self, guild_id: int, user_id: int, actor_id: int) -> bool:
        """Lift the member's block; whether there was one."""
        lifted = await self.blocks.unblock(guild_id, user_id, by=actor_id, now=self.clock())
        return lifted is not None
