"""Reserve + settle throughput of the real money path on a real SQLite file; prints JSON.

One operation is what a member's video costs the database: ``JobDesk.create`` (the
policy read, the block, cool-down, caps, credits and budget checks, the job row and
its reservation, all in one unit of work) and then the settlement through
``JobRepository.transition``: every other job is refunded (cancelled while queued,
one transaction) and the rest charged (submitting, submitted, succeeded, delivered:
four). ``writers`` members run concurrently on the bot's one connection, each in
its own coroutine; every writer is a different member of the same server, and the
server has a daily budget, so the budget's spend query runs on every reservation.

The ceiling, measured in the same run on the same disk: a bare aiosqlite connection
(WAL, ``synchronous=FULL``, as the bot opens its own) doing one INSERT + UPDATE
transaction per operation (``sqlite_limit_ops_per_s``). And the same operations at
10 writers with 100,000 finished jobs (each with its reservation and settlement in
the ledger, spread over the last 20 days) already in the database
(``ops_per_s_100k_history``): no query may grow with history.

    .venv/bin/python -m bench.ledger [--ops 1200] [--writers 1 10 50] [--quick]

On PostgreSQL (``bench._pg``): ``--postgresql`` starts a throwaway durable server,
``--database postgresql://…`` (or ``HAILUO_BENCH_DATABASE``) uses one; the same
operations run on the bot's own ``PostgresDatabase`` (its pool, as ``HAILUO_DATABASE``
opens it), each level on a fresh database, and the ceiling is a bare asyncpg
connection doing the same INSERT + UPDATE transaction (``postgresql_limit_ops_per_s``).

    .venv/bin/python -m bench.ledger --postgresql [--ops 1200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite
import asyncpg

from bench._common import quick
from bench._pg import PgBench, add_arguments, chosen
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import GuildPolicies, QuotaPolicy, current_period
from storage.db import Database
from storage.ledger import REBUILD_RUNNING_BALANCES
from storage.pg_dialect import postgres_text
from storage.postgres import PostgresDatabase

GUILD = 1
SPEC = JobSpec(mode=Mode.TEXT, prompt="a benchmark")
CHARGE = (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.DELIVERED)
PLENTY = 10**6
#: The pool ``PostgresDatabase.open`` makes by default (the bot's, from ``HAILUO_DATABASE``).
POOL = inspect.signature(PostgresDatabase.open).parameters["max_size"].default


async def writer(desk: JobDesk, member: int, ops: int, latencies: list[float]) -> None:
    for n in range(ops):
        started = time.perf_counter()
        job = await desk.create(JobRequest(GUILD, 2, member, SPEC))
        latencies.append(time.perf_counter() - started)
        path = (JobStatus.CANCELLED,) if n % 2 else CHARGE
        for status in path:
            job = await desk.jobs.transition(job, status, time.time())


HISTORY_DAYS = 20
FINISHED = ("delivered", "cancelled", "failed", "delivery_failed")


def history_rows(jobs: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The rows of ``jobs`` finished jobs of the server, and of their ledger entries."""
    rng = random.Random(13)
    now = time.time()
    spec = SPEC.to_json()
    job_rows = []
    ledger_rows = []
    for n in range(1, jobs + 1):
        created = now - rng.uniform(60, HISTORY_DAYS * 86400)
        period = current_period(created, "UTC", QuotaPolicy().period).key
        member = 1000 + rng.randrange(2000)
        status = FINISHED[n % len(FINISHED)]
        job_rows.append(
            (n, GUILD, 2, member, status, spec, 1, period, created, created + 120, created + 120)
        )
        ledger_rows.append((GUILD, member, n, "reserve", -1, period, created))
        settle = ("charge", 0) if status == "delivered" else ("refund", 1)
        ledger_rows.append((GUILD, member, n, settle[0], settle[1], period, created + 120))
    return job_rows, ledger_rows


JOB_COLUMNS = (
    "id", "guild_id", "channel_id", "user_id", "status", "spec", "cost", "period",
    "created_at", "updated_at", "finished_at",
)  # fmt: skip
LEDGER_COLUMNS = ("guild_id", "user_id", "job_id", "kind", "delta", "period", "created_at")


async def add_history(path: Path, jobs: int) -> None:
    """``jobs`` finished jobs of the server (each with its ledger rows), in one transaction."""
    job_rows, ledger_rows = history_rows(jobs)
    async with aiosqlite.connect(str(path), isolation_level=None) as conn:
        await conn.execute("BEGIN")
        await conn.executemany(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, status, spec, cost, period,"
            " created_at, updated_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            job_rows,
        )
        await conn.executemany(
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            ledger_rows,
        )
        # Written around the repositories: the running balances are summed afresh.
        for statement in REBUILD_RUNNING_BALANCES:
            await conn.execute(statement)
        await conn.execute("COMMIT")


async def sqlite_limit(folder: Path, ops: int) -> float:
    """Bare aiosqlite, one INSERT + UPDATE transaction per operation: the disk's ceiling."""
    async with aiosqlite.connect(str(folder / "bare.sqlite3"), isolation_level=None) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, at REAL)")
        started = time.perf_counter()
        for n in range(ops):
            await conn.execute("BEGIN IMMEDIATE")
            cursor = await conn.execute("INSERT INTO t (v, at) VALUES (?, ?)", (n, time.time()))
            await conn.execute("UPDATE t SET v = v + 1 WHERE id = ?", (cursor.lastrowid,))
            await conn.execute("COMMIT")
        return ops / (time.perf_counter() - started)


async def add_history_pg(url: str, jobs: int) -> None:
    """The same history on PostgreSQL (COPY), the identity moved past it, then ANALYZE."""
    job_rows, ledger_rows = history_rows(jobs)
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("jobs", records=job_rows, columns=JOB_COLUMNS)
            await conn.copy_records_to_table("ledger", records=ledger_rows, columns=LEDGER_COLUMNS)
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('jobs', 'id'), (SELECT max(id) FROM jobs))"
            )
            for statement in REBUILD_RUNNING_BALANCES:  # written around the repositories
                await conn.execute(postgres_text(statement))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def postgresql_limit(pg: PgBench, ops: int) -> float:
    """Bare asyncpg, one INSERT + UPDATE transaction per operation: the server's ceiling."""
    conn = await asyncpg.connect(await pg.fresh())
    try:
        await conn.execute(
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
            " v BIGINT, at DOUBLE PRECISION)"
        )
        started = time.perf_counter()
        for n in range(ops):
            async with conn.transaction():
                row = await conn.fetchval(
                    "INSERT INTO t (v, at) VALUES ($1, $2) RETURNING id", n, time.time()
                )
                await conn.execute("UPDATE t SET v = v + 1 WHERE id = $1", row)
        return ops / (time.perf_counter() - started)
    finally:
        await conn.close()


async def open_level(
    folder: Path, writers: int, history: int, pg: PgBench | None
) -> Database | PostgresDatabase:
    """The level's database: a fresh SQLite file, or a fresh PostgreSQL database."""
    if pg is not None:
        url = await pg.fresh()
        pg_db = await PostgresDatabase.open(url)  # migrates; the bot's default pool
        if history:
            await add_history_pg(url, history)
        return pg_db
    # A fresh folder per level: two levels of the same writers and history (``--history 0``)
    # never share a file.
    path = (
        Path(tempfile.mkdtemp(prefix=f"level-{writers}-{history}-", dir=folder)) / "bench.sqlite3"
    )
    db = await Database.open(path)
    if history:
        await db.close()
        await add_history(path, history)
        db = await Database.open(path)
    return db


async def level(
    folder: Path, writers: int, ops: int, history: int = 0, pg: PgBench | None = None
) -> dict[str, float | int]:
    db = await open_level(folder, writers, history, pg)
    try:
        defaults = QuotaPolicy(
            daily_credits=PLENTY, max_jobs_per_member=PLENTY, max_jobs_per_guild=PLENTY
        )
        policies = GuildPolicies(db, defaults, time.time)
        await policies.set_budget(GUILD, 0, daily=PLENTY, monthly=None)
        desk = JobDesk(db, clock=time.time, policy=policies, on_created=lambda: None)
        each = max(1, ops // writers)
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(writer(desk, 1000 + w, each, latencies) for w in range(writers)))
        seconds = time.perf_counter() - started
        spent = (await desk.usage(GUILD)).today
        if not history:
            assert spent == writers * (each - each // 2)  # the charged half; refunds net out
        quantiles = statistics.quantiles(latencies, n=100)
        return {
            "writers": writers,
            "history_jobs": history,
            "operations": writers * each,
            "seconds": round(seconds, 3),
            "operations_per_second": round(writers * each / seconds, 1),
            "reserve_ms_p50": round(quantiles[49] * 1000, 2),
            "reserve_ms_p99": round(quantiles[98] * 1000, 2),
        }
    finally:
        await db.close()


async def main_pg(
    target: str, ops: int, writer_counts: list[int], history: int
) -> dict[str, object]:
    """The same levels on PostgreSQL; the keys of SQLite's run, its ceiling renamed."""
    async with PgBench(target) as pg:
        limit = await postgresql_limit(pg, ops)
        folder = Path(tempfile.gettempdir())  # unused: no SQLite file is made
        results = [await level(folder, n, ops, pg=pg) for n in writer_counts]
        with_history = await level(folder, 10, max(50, ops // 6), history, pg)
        server = pg.describe()
    return {
        "ledger": {
            "ops_per_s": {str(r["writers"]): r["operations_per_second"] for r in results},
            "reserve_p99_ms": {str(r["writers"]): r["reserve_ms_p99"] for r in results},
            "reserve_p50_ms": {str(r["writers"]): r["reserve_ms_p50"] for r in results},
            "postgresql_limit_ops_per_s": round(limit, 1),
            "ops_per_s_100k_history": with_history["operations_per_second"],
            "history_jobs": history,
            "operations_per_level": ops,
            "python": platform.python_version(),
            **server,
            "pool_max_connections": POOL,
            "operation": "JobDesk.create + JobRepository.transition; half refunded (1"
            " transition), half charged (4 transitions); one server with a daily budget",
            "results": [*results, with_history],
        }
    }


async def main(ops: int, writer_counts: list[int], history: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        folder = Path(tmp)
        limit = await sqlite_limit(folder, ops)
        results = [await level(folder, n, ops) for n in writer_counts]
        with_history = await level(folder, 10, ops, history)
    return {
        "ledger": {
            "ops_per_s": {str(r["writers"]): r["operations_per_second"] for r in results},
            "reserve_p99_ms": {str(r["writers"]): r["reserve_ms_p99"] for r in results},
            "reserve_p50_ms": {str(r["writers"]): r["reserve_ms_p50"] for r in results},
            "sqlite_limit_ops_per_s": round(limit, 1),
            "ops_per_s_100k_history": with_history["operations_per_second"],
            "history_jobs": history,
            "operations_per_level": ops,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "operation": "JobDesk.create + JobRepository.transition; half refunded (1"
            " transition), half charged (4 transitions); one server with a daily budget",
            "results": [*results, with_history],
        }
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1200, help="operations per level")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--history", type=int, default=100_000, help="finished jobs of history")
    parser.add_argument("--quick", action="store_true", help="100 ops, 2,000 jobs of history")
    add_arguments(parser)
    args = parser.parse_args()
    ops, history = args.ops, args.history
    if args.quick or quick():
        ops, history = min(ops, 100), min(history, 2000)
    target = chosen(args)
    if target is None:
        print(json.dumps(asyncio.run(main(ops, args.writers, history)), indent=2))
    else:
        print(json.dumps(asyncio.run(main_pg(target, ops, args.writers, history)), indent=2))
