"""Per-server money settings: policy overrides, role tiers, cost overrides, budget notices.

Rows in, frozen dataclasses out. A missing row or a NULL column means "the
default" (decided in ``hailuo.money.quotas``), so a new server needs no set-up.
Every change is audited (``setting_changed``) in the transaction that makes it.
Nothing here counts credits: balances and spend are sums over the ledger.
A server's config is read in one hop, and kept until it changes where the engine
allows it (``GuildRepository``).
Member blocks are ``storage.moderation.BlockRepository`` (one home for blocks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from hailuo.model.status import JobStatus
from storage.audit import AuditAction, append_audit
from storage.engine import Engine, Step, reading, statements
from storage.engine import Statements as Tx
from storage.jobs_sql import IN_FLIGHT_TERM
from storage.port import UnitOfWork

#: Settings an admin may change; column names come from here, never from input.
SETTING_COLUMNS = frozenset(
    {
        "allowance",
        "allowance_period",
        "timezone",
        "daily_budget",
        "monthly_budget",
        "max_jobs_per_member",
        "max_jobs_per_guild",
        "cooldown_seconds",
        "notice_channel_id",
        "daily_money_budget",
        "monthly_money_budget",
    }
)

SELECT_SETTINGS = "SELECT * FROM guild_settings WHERE guild_id = :guild"
SELECT_TIERS = "SELECT role_id, credits FROM guild_tiers WHERE guild_id = :guild"
SELECT_COSTS = (
    "SELECT model, resolution, duration, credits FROM guild_costs WHERE guild_id = :guild"
)
UPSERT_TIER = """
INSERT INTO guild_tiers (guild_id, role_id, credits, updated_by, updated_at)
VALUES (:guild, :role, :credits, :actor, :now)
ON CONFLICT (guild_id, role_id) DO UPDATE SET
    credits = excluded.credits, updated_by = excluded.updated_by, updated_at = excluded.updated_at
"""
DELETE_TIER = "DELETE FROM guild_tiers WHERE guild_id = :guild AND role_id = :role"
UPSERT_COST = """
INSERT INTO guild_costs (guild_id, model, resolution, duration, credits, updated_by, updated_at)
VALUES (:guild, :model, :resolution, :duration, :credits, :actor, :now)
ON CONFLICT (guild_id, model, resolution, duration) DO UPDATE SET
    credits = excluded.credits, updated_by = excluded.updated_by, updated_at = excluded.updated_at
"""
SELECT_PRICES = """
SELECT provider, model, resolution, duration, price_micros FROM guild_prices WHERE guild_id = :guild
"""
UPSERT_PRICE = """
INSERT INTO guild_prices (guild_id, provider, model, resolution, duration, price_micros,
                          updated_by, updated_at)
VALUES (:guild, :provider, :model, :resolution, :duration, :price, :actor, :now)
ON CONFLICT (guild_id, provider, model, resolution, duration) DO UPDATE SET
    price_micros = excluded.price_micros, updated_by = excluded.updated_by,
    updated_at = excluded.updated_at
"""
DELETE_PRICE = """
DELETE FROM guild_prices WHERE guild_id = :guild AND provider = :provider AND model = :model
    AND resolution = :resolution AND duration = :duration
"""
# A server's jobs made in a time window, with what decides their price: who made the
# video and its spec (the JSON ``spec`` column's fields).
SELECT_PRICED_JOBS = """
SELECT id, status, provider, created_at,
       json_extract(spec, '$.model') AS model,
       json_extract(spec, '$.resolution') AS resolution,
       json_extract(spec, '$.duration') AS duration
FROM jobs WHERE guild_id = :guild AND created_at >= :start AND created_at < :end
"""
DELETE_COST = """
DELETE FROM guild_costs
WHERE guild_id = :guild AND model = :model AND resolution = :resolution AND duration = :duration
"""
INSERT_NOTICE = """
INSERT INTO budget_notices (guild_id, scope, period, threshold, spent, budget, created_at)
VALUES (:guild, :scope, :period, :threshold, :spent, :budget, :now)
ON CONFLICT DO NOTHING
"""
# Through the partial index ``jobs_in_flight`` (its very term): the count reads the
# server's open jobs only, not every job it ever had.
COUNT_IN_FLIGHT = f"""
SELECT
    COALESCE(SUM(CASE WHEN user_id = :user THEN 1 ELSE 0 END), 0) AS member,
    COUNT(*) AS guild
FROM jobs WHERE guild_id = :guild AND {IN_FLIGHT_TERM}
"""  # noqa: S608
# The same count without the jobs still held for a moderator (what approving one adds to),
# through the same partial index ``jobs_in_flight`` (migration 009): its words, then one less.
COUNT_ACTIVE = f"""
SELECT
    COALESCE(SUM(CASE WHEN user_id = :user THEN 1 ELSE 0 END), 0) AS member,
    COUNT(*) AS guild
FROM jobs WHERE guild_id = :guild AND {IN_FLIGHT_TERM}
    AND status != '{JobStatus.AWAITING_APPROVAL.value}'
"""  # noqa: S608


#: (provider, model, resolution, duration in seconds): whose price of which video.
PriceKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class GuildSettings:
    """What an admin set for one server; ``None`` means the default."""

    guild_id: int
    allowance: int | None = None
    allowance_period: str | None = None
    timezone: str | None = None
    daily_budget: int | None = None
    monthly_budget: int | None = None
    max_jobs_per_member: int | None = None
    max_jobs_per_guild: int | None = None
    cooldown_seconds: int | None = None
    notice_channel_id: int | None = None
    updated_by: int | None = None
    updated_at: float = 0.0
    daily_money_budget: int | None = None  # micro-dollars
    monthly_money_budget: int | None = None


@dataclass(frozen=True)
class GuildConfig:
    """Everything stored for one server's money."""

    settings: GuildSettings
    tiers: dict[int, int]  # role id -> credits per period
    costs: dict[tuple[str, str, int], int]  # (model, resolution, duration) -> credits
    #: (provider, model, resolution, duration) -> micro-dollars, the server's own prices.
    prices: dict[PriceKey, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PricedJob:
    """One job as the money view prices it: when, how it ended, who made it, its spec."""

    job_id: int
    created_at: float
    status: JobStatus
    provider: str | None
    model: str
    resolution: str
    duration: int


class GuildRepository:
    """With ``cache``, each server's config is read once and kept until it changes.

    Only for an engine whose database one process owns (the SQLite file): every change
    then comes through this repository, which forgets the server's config around it, so
    the next request still sees an admin's change at once. A read that overlapped a
    change is not kept (the generation moved meanwhile). PostgreSQL, shared by several
    processes, reads it every time.
    """

    def __init__(self, db: Engine, *, cache: bool = False) -> None:
        self.db = db
        self._cache: dict[int, GuildConfig] | None = {} if cache else None
        self._generation = 0

    async def config(self, guild_id: int, tx: UnitOfWork | None = None) -> GuildConfig:
        if tx is not None or self._cache is None:
            return await self._read_config(guild_id, tx)
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached
        generation = self._generation
        config = await self._read_config(guild_id, None)
        if generation == self._generation:
            self._cache[guild_id] = config
        return config

    @asynccontextmanager
    async def _changing(self, guild_id: int) -> AsyncIterator[Tx]:
        """A transaction that changes the server's config: forgotten before and after."""
        self._forget(guild_id)
        try:
            async with self.db.transaction() as tx:
                yield tx
        finally:
            self._forget(guild_id)

    def _forget(self, guild_id: int) -> None:
        self._generation += 1
        if self._cache is not None:
            self._cache.pop(guild_id, None)

    async def _read_config(self, guild_id: int, tx: UnitOfWork | None) -> GuildConfig:
        params = {"guild": guild_id}
        steps: list[Step] = [
            (SELECT_SETTINGS, params),
            (SELECT_TIERS, params),
            (SELECT_COSTS, params),
            (SELECT_PRICES, params),
        ]
        rows = await (statements(tx).batch(steps) if tx is not None else self.db.batch(steps))
        settings_rows, tier_rows, cost_rows, price_rows = rows
        settings = (
            GuildSettings(**dict(settings_rows[0])) if settings_rows else GuildSettings(guild_id)
        )
        tiers = {int(r["role_id"]): int(r["credits"]) for r in tier_rows}
        costs = {
            (str(r["model"]), str(r["resolution"]), int(r["duration"])): int(r["credits"])
            for r in cost_rows
        }
        prices = {
            (str(r["provider"]), str(r["model"]), str(r["resolution"]), int(r["duration"])): int(
                r["price_micros"]
            )
            for r in price_rows
        }
        return GuildConfig(settings, tiers, costs, prices)

    async def update_settings(
        self, guild_id: int, *, actor_id: int | None, now: float, **values: Any
    ) -> GuildSettings:
        """Set the named settings (``None`` puts one back to its default)."""
        unknown = set(values) - SETTING_COLUMNS
        if unknown or not values:
            raise ValueError(f"not a setting: {sorted(unknown) or 'nothing to set'}")
        columns = sorted(values)
        names = ", ".join(columns)
        params = ", ".join(f":{c}" for c in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        # Column names come from the fixed SETTING_COLUMNS above, never from input.
        sql = (
            f"INSERT INTO guild_settings (guild_id, updated_by, updated_at, {names}) "  # noqa: S608
            f"VALUES (:guild, :actor, :now, {params}) ON CONFLICT (guild_id) DO UPDATE SET "
            f"updated_by = excluded.updated_by, updated_at = excluded.updated_at, {updates}"
        )
        async with self._changing(guild_id) as tx:
            await tx.execute(sql, {**values, "guild": guild_id, "actor": actor_id, "now": now})
            await _audit(tx, guild_id, actor_id, now, {"money": values})
            row = await tx.fetch_one(SELECT_SETTINGS, {"guild": guild_id})
        assert row is not None
        return GuildSettings(**dict(row))

    async def set_tier(
        self, guild_id: int, role_id: int, credits: int | None, *, actor_id: int | None, now: float
    ) -> None:
        """Give a role its own allowance, or remove the role's tier (``credits=None``)."""
        params = {"guild": guild_id, "role": role_id}
        async with self._changing(guild_id) as tx:
            if credits is None:
                await tx.execute(DELETE_TIER, params)
            else:
                await tx.execute(
                    UPSERT_TIER, {**params, "credits": credits, "actor": actor_id, "now": now}
                )
            await _audit(
                tx, guild_id, actor_id, now, {"tier": {"role": role_id, "credits": credits}}
            )

    async def set_cost(
        self,
        guild_id: int,
        key: tuple[str, str, int],
        credits: int | None,
        *,
        actor_id: int | None,
        now: float,
    ) -> None:
        """Override one cost for the server, or go back to the default (``credits=None``)."""
        model, resolution, duration = key
        params = {"guild": guild_id, "model": model, "resolution": resolution, "duration": duration}
        async with self._changing(guild_id) as tx:
            if credits is None:
                await tx.execute(DELETE_COST, params)
            else:
                await tx.execute(
                    UPSERT_COST, {**params, "credits": credits, "actor": actor_id, "now": now}
                )
            await _audit(
                tx, guild_id, actor_id, now, {"cost": {"key": list(key), "credits": credits}}
            )

    async def set_price(
        self, guild_id: int, key: PriceKey, micros: int | None, *, actor_id: int | None, now: float
    ) -> None:
        """Set one price of a video for the server, or go back to the provider's default
        (``price_micros=None``)."""
        provider, model, resolution, duration = key
        params = {
            "guild": guild_id,
            "provider": provider,
            "model": model,
            "resolution": resolution,
            "duration": duration,
        }
        async with self._changing(guild_id) as tx:
            if micros is None:
                await tx.execute(DELETE_PRICE, params)
            else:
                await tx.execute(
                    UPSERT_PRICE, {**params, "price": micros, "actor": actor_id, "now": now}
                )
            change = {"price": {"key": list(key), "micros": micros}}
            await _audit(tx, guild_id, actor_id, now, change)

    async def priced_jobs(
        self, guild_id: int, start: float, end: float, tx: UnitOfWork | None = None
    ) -> list[PricedJob]:
        """The server's jobs made in ``[start, end)``, for the money view and budget."""
        rows = await reading(self.db, tx).fetch_all(
            SELECT_PRICED_JOBS, {"guild": guild_id, "start": start, "end": end}
        )
        return [
            PricedJob(
                job_id=int(r["id"]),
                created_at=float(r["created_at"]),
                status=JobStatus(r["status"]),
                provider=r["provider"],
                model=str(r["model"]),
                resolution=str(r["resolution"]),
                duration=int(r["duration"]),
            )
            for r in rows
        ]

    async def in_flight(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> tuple[int, int]:
        """Jobs in flight (held, queued or running) for the member and for the whole server."""
        row = await reading(self.db, tx).fetch_one(
            COUNT_IN_FLIGHT, {"guild": guild_id, "user": user_id}
        )
        return (int(row["member"]), int(row["guild"])) if row else (0, 0)

    async def active(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> tuple[int, int]:
        """Jobs in flight that are no longer held for a moderator (member, whole server)."""
        row = await reading(self.db, tx).fetch_one(
            COUNT_ACTIVE, {"guild": guild_id, "user": user_id}
        )
        return (int(row["member"]), int(row["guild"])) if row else (0, 0)

    async def record_notice(
        self,
        tx: UnitOfWork,
        guild_id: int,
        *,
        scope: str,
        period: str,
        threshold: int,
        spent: int,
        budget: int,
        now: float,
    ) -> bool:
        """Note that a budget notice is due; ``False`` if it was already sent this period."""
        changed = await statements(tx).execute(
            INSERT_NOTICE,
            {
                "guild": guild_id,
                "scope": scope,
                "period": period,
                "threshold": threshold,
                "spent": spent,
                "budget": budget,
                "now": now,
            },
        )
        return changed == 1


async def _audit(
    tx: Tx, guild_id: int, actor_id: int | None, now: float, details: dict[str, Any]
) -> None:
    await append_audit(
        tx,
        guild_id=guild_id,
        action=AuditAction.SETTING_CHANGED,
        actor_id=actor_id,
        now=now,
        details=details,
    )
