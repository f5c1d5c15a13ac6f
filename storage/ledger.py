"""The append-only credit ledger; every balance a member sees is a sum over it.

``delta`` is an entry's effect on the member's available credits in its
``period``: a reservation is ``-cost``, a refund ``+cost``, a charge ``0``
(it only makes the reservation final). Triggers in the schema refuse any
UPDATE or DELETE, and a unique index allows one settlement per job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.db import Database, Tx


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
    """Net credits used in a period, and the part still reserved by unsettled jobs."""

    used: int
    reserved: int


INSERT_ENTRY = """
INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, actor_id, reason, created_at)
VALUES (:guild, :user, :job, :kind, :delta, :period, :actor, :reason, :now)
"""
PERIOD_USAGE = """
SELECT
    COALESCE(-SUM(delta), 0) AS used,
    COALESCE(SUM(CASE WHEN kind = 'reserve' AND NOT EXISTS (
        SELECT 1 FROM ledger s WHERE s.job_id = ledger.job_id AND s.kind IN ('charge', 'refund')
    ) THEN -delta ELSE 0 END), 0) AS reserved
FROM ledger WHERE guild_id = :guild AND user_id = :user AND period = :period
"""
RECENT_ENTRIES = """
SELECT * FROM ledger WHERE guild_id = :guild AND user_id = :user ORDER BY id DESC LIMIT :limit
"""
ENTRIES_FOR_JOB = "SELECT * FROM ledger WHERE job_id = :job ORDER BY id"


async def append_entry(
    tx: Tx,
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
    return await tx.insert(
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
    def __init__(self, db: Database) -> None:
        self.db = db

    async def usage(
        self, guild_id: int, user_id: int, period: str, tx: Tx | None = None
    ) -> PeriodUsage:
        params = {"guild": guild_id, "user": user_id, "period": period}
        row = await (tx or self.db).fetch_one(PERIOD_USAGE, params)
        assert row is not None
        return PeriodUsage(used=int(row["used"]), reserved=int(row["reserved"]))

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
