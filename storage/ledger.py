"""The append-only credit ledger; every balance a member sees is a sum over it.

``delta`` is an entry's effect on the member's available credits in its
``period``: a reservation is ``-cost``, a refund ``+cost``, a charge ``0``
(it only makes the reservation final); a grant is ``+n`` (``-n`` takes credits
back) and a reset whatever brings the member back to the full allowance.
Triggers in the schema refuse any UPDATE or DELETE, and a unique index allows
one settlement per job.

A server's spend is the jobs' part of the ledger (reservations net of their
refunds), counted at the time of each reservation; grants and resets move a
member's allowance, not the owner's money.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.engine import Engine, reading, statements
from storage.port import UnitOfWork


class LedgerEntryKind(enum.StrEnum):
    RESERVE = "reserve"
    CHARGE = "charge"
    REFUND = "refund"
    GRANT = "grant"
    RESET = "reset"
    EXPIRE = "expire"


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    guild_id: int
    user_id: int
    job_id: int | None
    kind: LedgerEntryKind
    delta: int
    period: str
    actor_id: int | None
    reason: str
    created_at: float


@dataclass(frozen=True)
class PeriodUsage:
    """One member's period, summed from the ledger."""

    used: int  # credits taken by jobs (reserved or charged), net of refunds
    reserved: int  # the part of ``used`` still held by unsettled jobs
    adjusted: int = 0  # grants, take-backs and resets by admins, net

    @property
    def total(self) -> int:
        """The sum of every entry's delta in the period."""
        return self.adjusted - self.used


@dataclass(frozen=True)
class SpendRow:
    """One job's net cost to the owner, at the time it was reserved."""

    job_id: int
    user_id: int
    reserved_at: float
    net: int


INSERT_ENTRY = """
INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, actor_id, reason, created_at)
VALUES (:guild, :user, :job, :kind, :delta, :period, :actor, :reason, :now)
"""
PERIOD_USAGE = """
SELECT
    COALESCE(-SUM(CASE WHEN kind IN ('reserve', 'charge', 'refund') THEN delta END), 0) AS used,
    COALESCE(SUM(CASE WHEN kind IN ('grant', 'reset', 'expire') THEN delta END), 0) AS adjusted,
    COALESCE(SUM(CASE WHEN kind = 'reserve' AND NOT EXISTS (
        SELECT 1 FROM ledger s WHERE s.job_id = ledger.job_id AND s.kind IN ('charge', 'refund')
    ) THEN -delta ELSE 0 END), 0) AS reserved
FROM ledger WHERE guild_id = :guild AND user_id = :user AND period = :period
"""
RECENT_ENTRIES = """
SELECT * FROM ledger WHERE guild_id = :guild AND user_id = :user ORDER BY id DESC LIMIT :limit
"""
ENTRIES_FOR_JOB = "SELECT * FROM ledger WHERE job_id = :job ORDER BY id"
LAST_RESERVE = """
SELECT MAX(created_at) FROM ledger WHERE guild_id = :guild AND user_id = :user AND kind = 'reserve'
"""
# Reservations made in the window, less the refunds of those same jobs (refunds come later,
# so only refunds written since the window opened can belong to it).
GUILD_SPEND = """
SELECT
    (SELECT COALESCE(SUM(-delta), 0) FROM ledger
     WHERE guild_id = :guild AND kind = 'reserve' AND created_at >= :start AND created_at < :end)
  - (SELECT COALESCE(SUM(f.delta), 0)
     FROM ledger f JOIN ledger r ON r.job_id = f.job_id AND r.kind = 'reserve'
     WHERE f.guild_id = :guild AND f.kind = 'refund' AND f.created_at >= :start
       AND r.created_at >= :start AND r.created_at < :end)
"""
SPEND_ROWS = """
SELECT r.job_id, r.user_id, r.created_at AS reserved_at, SUM(-l.delta) AS net
FROM ledger r JOIN ledger l ON l.job_id = r.job_id AND l.kind IN ('reserve', 'refund')
WHERE r.guild_id = :guild AND r.kind = 'reserve' AND r.created_at >= :start AND r.created_at < :end
GROUP BY r.id ORDER BY r.created_at
"""


async def append_entry(
    tx: UnitOfWork,
    *,
    guild_id: int,
    user_id: int,
    job_id: int | None,
    kind: LedgerEntryKind,
    delta: int,
    period: str,
    actor_id: int | None,
    reason: str,
    now: float,
) -> int:
    return await statements(tx).insert(
        INSERT_ENTRY,
        {
            "guild": guild_id,
            "user": user_id,
            "job": job_id,
            "kind": kind.value,
            "delta": delta,
            "period": period,
            "actor": actor_id,
            "reason": reason,
            "now": now,
        },
    )


class LedgerRepository:
    def __init__(self, db: Engine) -> None:
        self.db = db

    async def append(
        self,
        tx: UnitOfWork,
        *,
        guild_id: int,
        user_id: int,
        job_id: int | None,
        kind: LedgerEntryKind,
        delta: int,
        period: str,
        actor_id: int | None,
        reason: str,
        now: float,
    ) -> int:
        """Append one entry in the caller's unit of work (a grant or reset with its audit row)."""
        return await append_entry(
            tx,
            guild_id=guild_id,
            user_id=user_id,
            job_id=job_id,
            kind=kind,
            delta=delta,
            period=period,
            actor_id=actor_id,
            reason=reason,
            now=now,
        )

    async def usage(
        self, guild_id: int, user_id: int, period: str, tx: UnitOfWork | None = None
    ) -> PeriodUsage:
        params = {"guild": guild_id, "user": user_id, "period": period}
        row = await reading(self.db, tx).fetch_one(PERIOD_USAGE, params)
        assert row is not None
        return PeriodUsage(
            used=int(row["used"]), reserved=int(row["reserved"]), adjusted=int(row["adjusted"])
        )

    async def last_reservation(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> float:
        """When the member's latest job was created (0 if never): the cool-down's clock."""
        row = await reading(self.db, tx).fetch_one(
            LAST_RESERVE, {"guild": guild_id, "user": user_id}
        )
        return float(row[0]) if row and row[0] is not None else 0.0

    async def guild_spend(
        self, guild_id: int, start: float, end: float, tx: UnitOfWork | None = None
    ) -> int:
        """Credits the server's jobs reserved in ``[start, end)``, net of their refunds."""
        params = {"guild": guild_id, "start": start, "end": end}
        row = await reading(self.db, tx).fetch_one(GUILD_SPEND, params)
        return int(row[0]) if row else 0

    async def spend_rows(self, guild_id: int, start: float, end: float) -> list[SpendRow]:
        rows = await self.db.fetch_all(SPEND_ROWS, {"guild": guild_id, "start": start, "end": end})
        return [
            SpendRow(int(r["job_id"]), int(r["user_id"]), float(r["reserved_at"]), int(r["net"]))
            for r in rows
        ]

    async def recent(self, guild_id: int, user_id: int, limit: int = 5) -> list[LedgerEntry]:
        rows = await self.db.fetch_all(
            RECENT_ENTRIES, {"guild": guild_id, "user": user_id, "limit": limit}
        )
        return [_entry(r) for r in rows]

    async def for_job(self, job_id: int) -> list[LedgerEntry]:
        return [_entry(r) for r in await self.db.fetch_all(ENTRIES_FOR_JOB, {"job": job_id})]


def _entry(row: object) -> LedgerEntry:
    data = dict(row)  # type: ignore[call-overload]
    data["kind"] = LedgerEntryKind(data["kind"])
    return LedgerEntry(**data)
