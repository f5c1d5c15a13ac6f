"""Running balances (migration 009) always equal the ledger's sums, on a real SQLite file.

The member's period (used, reserved, adjusted) and the server's spend per quarter hour
are kept beside the ledger in the same transaction as each entry; the ledger stays the
truth. These tests compare them with sums over the ledger after a migration of an old
file, after 200 concurrent reservations (no overdraw, in one group commit or several),
and across time zones whose midnight is not on the hour. The stateful property test
(``tests/test_ledger_property.py``) checks the same after every step.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import QuotaExceeded
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy, budget_period
from storage.db import Database, sha256_hex
from storage.ledger import (
    GUILD_SPEND_FROM_LEDGER,
    PERIOD_USAGE_FROM_LEDGER,
    REBUILD_RUNNING_BALANCES,
)
from storage.migrating import migration_scripts, statements_of
from tests.support import FakeClock

GUILD = 1
SPEC = JobSpec(mode=Mode.TEXT, prompt="a running balance")

SLOTS_FROM_LEDGER = """
SELECT r.guild_id, CAST(r.created_at / 900 AS INTEGER) AS slot,
    SUM(-r.delta - COALESCE((SELECT SUM(f.delta) FROM ledger f
                             WHERE f.job_id = r.job_id AND f.kind = 'refund'), 0)) AS credits
FROM ledger r WHERE r.kind = 'reserve' GROUP BY r.guild_id, slot
"""


async def assert_running_balances_match(db: Database) -> None:
    """Every running balance row equals the ledger's sums, and no period is missing."""
    keys = await db.fetch_all(
        "SELECT DISTINCT guild_id, user_id, period FROM ledger"
        " UNION SELECT guild_id, user_id, period FROM ledger_balances"
    )
    for key in keys:
        params = {"guild": key[0], "user": key[1], "period": key[2]}
        expected = await db.fetch_one(PERIOD_USAGE_FROM_LEDGER, params)
        assert expected is not None
        usage = await db.ledger.usage(key[0], key[1], key[2])
        assert (usage.used, usage.reserved, usage.adjusted) == (
            expected["used"],
            expected["reserved"],
            expected["adjusted"],
        ), params
    slots = {(r[0], r[1]): r[2] for r in await db.fetch_all(SLOTS_FROM_LEDGER)}
    kept = {(r[0], r[1]): r[2] for r in await db.fetch_all("SELECT * FROM guild_spend")}
    assert {k: v for k, v in kept.items() if v} == {k: v for k, v in slots.items() if v}


def desk_for(db: Database, clock: FakeClock, policy: QuotaPolicy) -> JobDesk:
    async def policy_for(_: int) -> QuotaPolicy:
        return policy

    return JobDesk(db, clock=clock, policy=policy_for, on_created=lambda: None)


async def test_running_balance_backfilled_from_an_old_ledger(tmp_path: Path) -> None:
    """A file at migration 008 with a ledger gets its running balances from its sums."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("sha256", 1, sha256_hex, deterministic=True)
    for number, _, script in migration_scripts():
        if number < 9:
            for statement in statements_of(script):
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 8")
    spec = SPEC.to_json()
    rows = [  # (job, member, status, settlement, reserved at)
        (1, 11, "delivered", ("charge", 0), 1000.0),
        (2, 11, "cancelled", ("refund", 2), 1900.0),
        (3, 12, "queued", None, 2000.0),
        (4, 12, "failed", ("refund", 2), 90000.0),
    ]
    for job, member, status, settle, at in rows:
        conn.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, status, spec, cost, period,"
            " created_at, updated_at) VALUES (?, 1, 2, ?, ?, ?, 2, 'd1', ?, ?)",
            (job, member, status, spec, at, at),
        )
        conn.execute(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, created_at)"
            " VALUES (1, ?, ?, 'reserve', -2, 'd1', ?)",
            (member, job, at),
        )
        if settle:
            conn.execute(
                "INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, created_at)"
                " VALUES (1, ?, ?, ?, ?, 'd1', ?)",
                (member, job, settle[0], settle[1], at + 60),
            )
    conn.execute(
        "INSERT INTO ledger (guild_id, user_id, kind, delta, period, created_at)"
        " VALUES (1, 11, 'grant', 5, 'd1', 3000)"
    )
    conn.close()
    db = await Database.open(path)
    try:
        assert await db.schema_version() >= 9
        await assert_running_balances_match(db)
        usage = await db.ledger.usage(GUILD, 11, "d1")
        assert (usage.used, usage.reserved, usage.adjusted) == (2, 0, 5)
        usage = await db.ledger.usage(GUILD, 12, "d1")
        assert (usage.used, usage.reserved, usage.adjusted) == (2, 2, 0)
        # The spend of the first day: jobs 1 and 3 (job 2 refunded), job 4 the next day.
        assert await db.ledger.guild_spend(GUILD, 0, 86400) == 4
        assert await db.ledger.guild_spend(GUILD, 86400, 2 * 86400) == 0
    finally:
        await db.close()


async def test_running_balance_no_overdraw_at_200_concurrent(tmp_path: Path) -> None:
    """200 reservations at once for 30 credits: exactly 30 win, whatever the groups."""
    db = await Database.open(tmp_path / "burst.sqlite3")
    clock = FakeClock()
    desk = desk_for(db, clock, QuotaPolicy(daily_credits=30, max_jobs_per_member=1000))
    try:
        results = await asyncio.gather(
            *(desk.create(JobRequest(GUILD, 2, 11, SPEC)) for _ in range(200)),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        assert len(won) == 30 and len(refused) == 170
        assert (await desk.balance(GUILD, 11)).remaining == 0
        # Half of them settle at once too: the refunds come back, the balances follow.
        await asyncio.gather(
            *(desk.jobs.transition(job, JobStatus.CANCELLED, clock()) for job in won[:15])
        )
        balance = await desk.balance(GUILD, 11)
        assert (balance.remaining, balance.reserved, balance.used) == (15, 15, 15)
        await assert_running_balances_match(db)
        kept = await db.fetch_all("SELECT * FROM ledger_balances ORDER BY 1, 2, 3")
        async with db.transaction() as tx:  # summed afresh: the same rows
            for statement in REBUILD_RUNNING_BALANCES:
                await tx.execute(statement)
        rebuilt = await db.fetch_all("SELECT * FROM ledger_balances ORDER BY 1, 2, 3")
        assert [tuple(r) for r in rebuilt] == [tuple(r) for r in kept]
    finally:
        await db.close()


async def test_running_balance_server_budget_no_overdraw_at_200_concurrent(
    tmp_path: Path,
) -> None:
    """200 members at once against a server budget of 25 credits a day: 25 jobs."""
    db = await Database.open(tmp_path / "budget.sqlite3")
    clock = FakeClock()
    desk = desk_for(db, clock, QuotaPolicy(daily_budget=25, max_jobs_per_guild=1000))
    try:
        results = await asyncio.gather(
            *(desk.create(JobRequest(GUILD, 2, 100 + n, SPEC)) for n in range(200)),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 25
        assert all(
            isinstance(r, QuotaExceeded) and r.rule == "quota.budget_day"
            for r in results
            if isinstance(r, BaseException)
        )
        await assert_running_balances_match(db)
    finally:
        await db.close()


async def test_running_balance_spend_in_time_zones_off_the_hour(tmp_path: Path) -> None:
    """Kathmandu's day starts at :15 UTC; the spend still equals the ledger's sum."""
    db = await Database.open(tmp_path / "zones.sqlite3")
    clock = FakeClock()
    zone = "Asia/Kathmandu"
    desk = desk_for(db, clock, QuotaPolicy(daily_credits=100, max_jobs_per_member=1000))
    try:
        for _ in range(40):  # a job every 47 minutes, across local midnights
            job = await desk.create(JobRequest(GUILD, 2, 11, SPEC))
            if job.id % 3 == 0:
                await desk.jobs.transition(job, JobStatus.CANCELLED, clock())
            clock.advance(47 * 60)
        for moment in (clock() - 86400, clock() - 40000, clock()):
            for scope in ("day", "month"):
                window = budget_period(moment, zone, scope)
                params = {"guild": GUILD, "start": window.starts_at, "end": window.renews_at}
                row = await db.fetch_one(GUILD_SPEND_FROM_LEDGER, params)
                assert row is not None
                spent = await db.ledger.guild_spend(GUILD, window.starts_at, window.renews_at)
                assert spent == row[0]
        # A window off the quarter hours is summed from the ledger itself.
        start, end = clock() - 86400 + 7, clock() - 3
        row = await db.fetch_one(
            GUILD_SPEND_FROM_LEDGER, {"guild": GUILD, "start": start, "end": end}
        )
        assert row is not None and await db.ledger.guild_spend(GUILD, start, end) == row[0] > 0
        await assert_running_balances_match(db)
    finally:
        await db.close()
