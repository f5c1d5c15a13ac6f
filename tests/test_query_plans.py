"""No query on the money path (reserve, settle) and none of the worker's reads history.

``EXPLAIN QUERY PLAN`` on the real schema, with a history of finished jobs in the file:
every query named here must seek (``SEARCH``) or walk a partial index that holds only
open jobs; a plain ``SCAN`` of a table would grow with every job a server ever had
(the in-flight count, the budget's spend and the cool-down did before migration 009).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage import blocklist, delivery, guilds, jobs_sql, leases, ledger, moderation
from storage.db import Database
from storage.grouping import Step
from storage.job_rows import update_step
from storage.jobs import INSERT_JOB_MEMBER_NOTIFY

#: Partial indexes that hold open jobs only: walking one is bounded by the open jobs.
OPEN_ONLY = {"jobs_queued", "jobs_in_flight", "jobs_poll_due", "jobs_delivery_due"}

#: Every statement of ``JobDesk.create`` and of a transition with its settlement.
MONEY_PATH = {
    "moderation settings": moderation.SELECT_SETTINGS,
    "blocklist": blocklist.SELECT_BLOCKLIST,
    "open block": moderation.SELECT_OPEN_BLOCK,
    "notify": delivery.SELECT_NOTIFY,
    "settings": guilds.SELECT_SETTINGS,
    "tiers": guilds.SELECT_TIERS,
    "costs": guilds.SELECT_COSTS,
    "prices": guilds.SELECT_PRICES,
    "cool-down": ledger.LAST_RESERVE,
    "in flight": guilds.COUNT_IN_FLIGHT,
    "active": guilds.COUNT_ACTIVE,
    "balance": ledger.PERIOD_USAGE,
    "budget spend": ledger.GUILD_SPEND,
    "money budget": guilds.SELECT_PRICED_JOBS,
    "insert job": INSERT_JOB_MEMBER_NOTIFY,
    "insert entry": ledger.INSERT_ENTRY,
    "running balance": ledger.ADD_TO_BALANCE,
    "running spend": ledger.ADD_TO_SPEND,
    "budget notice": guilds.INSERT_NOTICE,
    "job": jobs_sql.SELECT_JOB,
    "transition": update_step(1, JobStatus.QUEUED, JobStatus.CANCELLED, 1.0, {})[0],
    "by interaction": jobs_sql.SELECT_BY_INTERACTION,
}
#: The worker's reads of open and due jobs.
WORKER = {
    "open jobs": jobs_sql.SELECT_OPEN,
    "submitting (recovery)": jobs_sql.SELECT_BY_OPEN_STATUS,
    # The lease claims the worker reads its due work through (``storage.leases``).
    **{
        f"claim {kind}": claim  # each claim returns what it leased (no read by holder)
        for kind, (claim, _order) in zip(
            ("polls", "deliveries", "lapsed submits"),
            leases.claim_statements("sqlite", ["s0"], ["b0"]),
            strict=True,
        )
    },
    "queued free": leases.SELECT_QUEUED_FREE,
    "next due": jobs_sql.SELECT_NEXT_DUE,
    "by task": jobs_sql.SELECT_BY_TASK,
}


SPEC = JobSpec(mode=Mode.TEXT, prompt="x").to_json()
INSERT_FINISHED = """
INSERT INTO jobs (id, guild_id, channel_id, user_id, status, spec, cost, period, created_at,
                  updated_at, finished_at)
VALUES (:n, 1, 2, :user, :status, :spec, 1, '2026-11-01', :n, :n, :n)
"""
INSERT_RESERVE = """
INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, created_at)
VALUES (1, :user, :n, 'reserve', -1, '2026-11-01', :n)
"""


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[Database]:
    """A database with 2,000 finished jobs of one server, each with its ledger rows."""
    db = await Database.open(tmp_path / "plans.sqlite3")
    steps: list[Step] = []
    for n in range(1, 2001):
        params = {"n": n, "user": 100 + n % 50, "spec": SPEC}
        params["status"] = "delivered" if n % 2 else "cancelled"
        steps.append((INSERT_FINISHED, params))
        steps.append((INSERT_RESERVE, params))
    async with db.transaction() as tx:
        await tx.batch(steps)
    yield db
    await db.close()


def problems(details: list[str]) -> list[str]:
    """The steps of a plan that walk a whole table (or an index of every row)."""
    found = []
    for detail in details:
        scan = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if scan is None or scan.group(1) == "CONSTANT":
            continue
        if scan.group(2) not in OPEN_ONLY:
            found.append(detail)
    return found


async def plan(db: Database, sql: str) -> list[str]:
    params = {name: 1 for name in re.findall(r":(\w+)", sql)}
    rows = await db.fetch_all("EXPLAIN QUERY PLAN " + sql, params)
    return [str(r[3]) for r in rows]


@pytest.mark.parametrize("name", sorted(MONEY_PATH))
async def test_query_plan_of_the_money_path_never_scans_history(
    history: Database, name: str
) -> None:
    details = await plan(history, MONEY_PATH[name])
    assert problems(details) == [], f"{name}: {details}"


@pytest.mark.parametrize("name", sorted(WORKER))
async def test_query_plan_of_the_worker_never_scans_history(history: Database, name: str) -> None:
    details = await plan(history, WORKER[name])
    assert problems(details) == [], f"{name}: {details}"


async def test_query_plan_check_sees_a_scan(history: Database) -> None:
    """The check itself: the ledger-wide sum it replaced is a scan, and is caught."""
    details = await plan(history, "SELECT SUM(delta) FROM ledger WHERE reason = :reason")
    assert problems(details) == ["SCAN ledger"]


async def test_query_plan_in_flight_counts_only_open_jobs(history: Database) -> None:
    """Behaviour behind the plan: the count is right beside 2,000 finished jobs."""
    async with history.transaction() as tx:
        await tx.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, status, spec, cost, period,"
            " created_at, updated_at) VALUES (1, 2, 100, 'queued', :spec, 1, 'p', 5000, 5000),"
            " (1, 2, 101, 'awaiting_approval', :spec, 1, 'p', 5001, 5001)",
            {"spec": SPEC},
        )
    assert await history.guilds.in_flight(1, 100) == (1, 2)
    assert await history.guilds.active(1, 100) == (1, 1)
    assert [j.user_id for j in await history.jobs.open_jobs()] == [100, 101]
    assert [j.user_id for j in await history.jobs.by_status(JobStatus.QUEUED)] == [100]
    assert len(await history.jobs.by_status(JobStatus.DELIVERED)) == 1000
    assert await history.ledger.last_reservation(1, 101) == 5001
