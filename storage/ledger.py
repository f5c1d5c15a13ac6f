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

Why running balances: summing a member's period, or a server's day, over the
ledger grows with history. So every entry also moves the member's running
balance for its period (``ledger_balances``) and its server's spend per quarter
hour (``guild_spend``), in the same statement batch, in the same transaction
(migration 009); reads are one row, or at most a budget window's quarter hours.
The ledger stays the truth: ``*_FROM_LEDGER`` sum it, and a test keeps both equal.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from sqlite3 import Row

from storage.engine import Engine, Step, reading, statements
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
#: The same, handing back the entry's id. Only where it is wanted: SQLite keeps the rows
#: of a ``RETURNING`` in a table of their own, and every job's reservation and settlement
#: would pay for it (4 us of 11 per insert here).
INSERT_ENTRY_RETURNING = INSERT_ENTRY.rstrip() + "\nRETURNING id\n"
#: The member's running balance in the period moves with every entry (migration 009).
ADD_TO_BALANCE = """
INSERT INTO ledger_balances (guild_id, user_id, period, used, reserved, adjusted)
VALUES (:guild, :user, :period, :used, :reserved, :adjusted)
ON CONFLICT (guild_id, user_id, period) DO UPDATE SET
    used = ledger_balances.used + excluded.used,
    reserved = ledger_balances.reserved + excluded.reserved,
    adjusted = ledger_balances.adjusted + excluded.adjusted
"""
#: A reservation adds to its quarter hour's spend; its refund takes it back there.
ADD_TO_SPEND = """
INSERT INTO guild_spend (guild_id, slot, credits) VALUES (:guild, :slot, :credits)
ON CONFLICT (guild_id, slot) DO UPDATE SET credits = guild_spend.credits + excluded.credits
"""
PERIOD_USAGE = """
SELECT used, reserved, adjusted FROM ledger_balances
WHERE guild_id = :guild AND user_id = :user AND period = :period
"""
#: The same, summed from the ledger itself: what the running balance must always equal.
PERIOD_USAGE_FROM_LEDGER = """
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
# Every reservation is made with its job, at the job's creation time, so the member's
# latest job is their latest reservation (one step down the ``jobs_member`` index).
LAST_RESERVE = """
SELECT MAX(created_at) FROM jobs WHERE guild_id = :guild AND user_id = :user
"""
#: Quarter hours: every time zone's midnight falls on one (``guild_spend``, migration 009).
SLOT_SECONDS = 900
GUILD_SPEND = """
SELECT COALESCE(SUM(credits), 0) FROM guild_spend
WHERE guild_id = :guild AND slot >= :first AND slot < :last
"""
# Reservations made in the window, less the refunds of those same jobs (refunds come later,
# so only refunds written since the window opened can belong to it): from the ledger itself,
# for a window that does not fall on quarter hours, and to check ``guild_spend``.
GUILD_SPEND_FROM_LEDGER = """
SELECT
    (SELECT COALESCE(SUM(-delta), 0) FROM ledger
     WHERE guild_id = :guild AND kind = 'reserve' AND created_at >= :start AND created_at < :end)
  - (SELECT COALESCE(SUM(f.delta), 0)
     FROM ledger f JOIN ledger r ON r.job_id = f.job_id AND r.kind = 'reserve'
     WHERE f.guild_id = :guild AND f.kind = 'refund' AND f.created_at >= :start
       AND r.created_at >= :start AND r.created_at < :end)
"""
#: The running balances summed afresh from the ledger (as migration 009 first filled them),
#: for rows written around the repositories (a bulk import, the benchmark's history).
REBUILD_RUNNING_BALANCES = (
    "DELETE FROM ledger_balances",
    "DELETE FROM guild_spend",
    """
INSERT INTO ledger_balances (guild_id, user_id, period, used, reserved, adjusted)
SELECT guild_id, user_id, period, used, reserved, adjusted FROM (
    SELECT guild_id, user_id, period,
    COALESCE(-SUM(CASE WHEN kind IN ('reserve', 'charge', 'refund') THEN delta END), 0) AS used,
    COALESCE(SUM(CASE WHEN kind = 'reserve' AND NOT EXISTS (
        SELECT 1 FROM ledger s WHERE s.job_id = ledger.job_id AND s.kind IN ('charge', 'refund')
    ) THEN -delta ELSE 0 END), 0) AS reserved,
    COALESCE(SUM(CASE WHEN kind IN ('grant', 'reset', 'expire') THEN delta END), 0) AS adjusted
    FROM ledger GROUP BY guild_id, user_id, period
)
""",
    """
INSERT INTO guild_spend (guild_id, slot, credits)
SELECT r.guild_id, CAST(r.created_at / 900 AS INTEGER) AS slot,
    SUM(-r.delta - COALESCE((SELECT SUM(f.delta) FROM ledger f
                             WHERE f.job_id = r.job_id AND f.kind = 'refund'), 0))
FROM ledger r WHERE r.kind = 'reserve'
GROUP BY r.guild_id, CAST(r.created_at / 900 AS INTEGER)
""",
)
SPEND_ROWS = """
SELECT r.job_id, r.user_id, r.created_at AS reserved_at, SUM(-l.delta) AS net
FROM ledger r JOIN ledger l ON l.job_id = r.job_id AND l.kind IN ('reserve', 'refund')
WHERE r.guild_id = :guild AND r.kind = 'reserve' AND r.created_at >= :start AND r.created_at < :end
GROUP BY r.id ORDER BY r.created_at
"""


def slot_of(moment: float) -> int:
    """The quarter hour a reservation made at ``moment`` counts in (``guild_spend``)."""
    return int(moment // SLOT_SECONDS)


def entry_steps(
    *,
    guild_id: int,
    user_id: int,
    job_id: int | Callable[[list[list[Row]]], int] | None,
    kind: LedgerEntryKind,
    delta: int,
    period: str,
    actor_id: int | None,
    reason: str,
    now: float,
    settled: int = 0,
    reserved_at: float | None = None,
    returning: bool = False,
) -> list[Step]:
    """The statements of one ledger entry: the row, and the running balances it moves.

    ``settled`` is the reservation a charge or refund settles (a charge's delta is 0);
    ``reserved_at`` when the settled job reserved (a refund gives its spend back there).
    ``job_id`` may be a function of the batch's earlier rows (a job inserted just before).
    ``returning``: the row's step hands back the entry's id.
    """
    used = reserved = adjusted = 0
    spend: tuple[int, int] | None = None
    if kind is LedgerEntryKind.RESERVE:
        used = reserved = -delta
        spend = (slot_of(now), -delta)
    elif kind is LedgerEntryKind.CHARGE:
        reserved = -settled
    elif kind is LedgerEntryKind.REFUND:
        used = reserved = -settled
        if reserved_at is not None:
            spend = (slot_of(reserved_at), -settled)
    else:
        adjusted = delta
    entry = {
        "guild": guild_id,
        "user": user_id,
        "kind": kind.value,
        "delta": delta,
        "period": period,
        "actor": actor_id,
        "reason": reason,
        "now": now,
    }
    balance = {"guild": guild_id, "user": user_id, "period": period}
    insert = INSERT_ENTRY_RETURNING if returning else INSERT_ENTRY
    row: Step = (
        (insert, lambda rows: {**entry, "job": job_id(rows)})
        if callable(job_id)
        else (insert, {**entry, "job": job_id})
    )
    steps: list[Step] = [
        row,
        (ADD_TO_BALANCE, {**balance, "used": used, "reserved": reserved, "adjusted": adjusted}),
    ]
    if spend is not None and spend[1]:
        steps.append((ADD_TO_SPEND, {"guild": guild_id, "slot": spend[0], "credits": spend[1]}))
    return steps


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
    """One entry with its running balances, in one batch (a grant, take-back or reset)."""
    rows = await statements(tx).batch(
        entry_steps(
            guild_id=guild_id,
            user_id=user_id,
            job_id=job_id,
            kind=kind,
            delta=delta,
            period=period,
            actor_id=actor_id,
            reason=reason,
            now=now,
            returning=True,
        )
    )
    return int(rows[0][0]["id"])


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
        if row is None:
            return PeriodUsage(used=0, reserved=0)
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
        source = reading(self.db, tx)
        if start % SLOT_SECONDS or end % SLOT_SECONDS:  # not on quarter hours: the ledger
            params = {"guild": guild_id, "start": start, "end": end}
            row = await source.fetch_one(GUILD_SPEND_FROM_LEDGER, params)
        else:
            slots = {"guild": guild_id, "first": slot_of(start), "last": slot_of(end)}
            row = await source.fetch_one(GUILD_SPEND, slots)
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
