"""The PostgreSQL engine on a real server: what is its own (the rest is the contract tests).

Its migrations and their record, the schema beside SQLite's, every statement of
``storage/`` read by PostgreSQL, the append-only triggers, and the guarantees that
must hold across processes: one winner of a guarded transition, a check-then-write
(the last credit) that two processes cannot both pass, and a cancelled unit of work
that leaves no connection inside a transaction.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from pathlib import Path

import asyncpg
import pytest

import storage
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import QuotaExceeded
from hailuo.model.job import NewJob
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from storage.db import Database, DatabaseOpenError
from storage.jobs import JobRepository, StaleTransition
from storage.leases import RELEASE_MANY, claim_statements
from storage.ledger import LedgerRepository
from storage.opening import is_postgres_url, open_storage
from storage.pg_dialect import postgres_text
from storage.pg_migrating import pg_migration_scripts
from storage.postgres import ConstraintError, PostgresDatabase, redacted
from tests.pg_server import PgServer
from tests.support import FakeClock

VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
WAITING_FOR_THE_LOCK = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


def new_job(cost: int = 1, user_id: int = 3) -> NewJob:
    spec = JobSpec(mode=Mode.TEXT, prompt="x")
    return NewJob(guild_id=1, channel_id=2, user_id=user_id, spec=spec, cost=cost, period="p")


@pytest.fixture
async def pg(pg_url: str) -> PostgresDatabase:
    database = await PostgresDatabase.open(pg_url)
    yield database
    await database.close()


def storage_statements() -> dict[str, str]:
    """Every SQL constant of ``storage/`` (module-level strings that read as statements),
    but those named ``SQLITE_…``: they read SQLite's own catalogue."""
    found = {}
    for info in pkgutil.iter_modules(storage.__path__):
        module = importlib.import_module(f"storage.{info.name}")
        for name, value in vars(module).items():
            sqlite_only = name.startswith("SQLITE_")
            if (
                isinstance(value, str)
                and name.isupper()
                and not sqlite_only
                and value.lstrip().startswith(VERBS)
                and "{" not in value  # a template: its rendered texts are added below
            ):
                found[f"{info.name}.{name}"] = value
    for i, (claim, _order) in enumerate(claim_statements("postgresql", ["s0", "s1"], ["b0"])):
        found[f"leases.claim_statements[{i}]"] = claim
    found["leases.RELEASE_MANY"] = RELEASE_MANY.format(ids=":j0, :j1")
    return found


async def test_postgresql_reads_every_statement_of_storage(pg: PostgresDatabase) -> None:
    statements = storage_statements()
    assert len(statements) > 60  # the scan finds the repositories' SQL
    failures = {}
    conn = await asyncpg.connect(pg.url)
    try:
        for name, sql in statements.items():
            try:
                await conn.prepare(postgres_text(sql))
            except asyncpg.PostgresError as exc:
                failures[name] = str(exc)
    finally:
        await conn.close()
    assert failures == {}


async def test_postgresql_migrations_run_once_and_are_recorded(pg_server: PgServer) -> None:
    name, url = await pg_server.create_empty_database()
    try:
        first = await PostgresDatabase.open(url)
        assert await first.schema_version() == len(pg_migration_scripts())
        await first.close()
        second = await PostgresDatabase.open(url)  # a restart: nothing applied twice
        rows = await second.fetch_all("SELECT version, name FROM schema_version ORDER BY version")
        await second.close()
        assert [(r["version"], r["name"]) for r in rows] == [
            (number, file) for number, file, _ in pg_migration_scripts()
        ]
    finally:
        await pg_server.drop_database(name)


async def test_postgresql_two_processes_migrating_at_once_apply_each_script_once(
    pg_server: PgServer,
) -> None:
    name, url = await pg_server.create_empty_database()
    try:
        dbs = await asyncio.gather(PostgresDatabase.open(url), PostgresDatabase.open(url))
        rows = await dbs[0].fetch_all("SELECT version FROM schema_version")
        for db in dbs:
            await db.close()
        assert len(rows) == len(pg_migration_scripts())
    finally:
        await pg_server.drop_database(name)


async def test_postgresql_schema_has_every_table_and_column_of_sqlite(
    pg: PostgresDatabase, tmp_path: Path
) -> None:
    """A SQLite migration not yet ported to ``storage/migrations_pg/`` fails here."""
    lite = await Database.open(tmp_path / "schema.sqlite3")
    try:
        tables = await lite.fetch_all(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'"
        )
        sqlite_columns = {
            t["name"]: {c["name"] for c in await lite.fetch_all(f"PRAGMA table_info({t['name']})")}
            for t in tables
        }
    finally:
        await lite.close()
    rows = await pg.fetch_all(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name <> 'schema_version'"
    )
    pg_columns: dict[str, set[str]] = {}
    for row in rows:
        pg_columns.setdefault(row["table_name"], set()).add(row["column_name"])
    assert pg_columns == sqlite_columns


@pytest.mark.parametrize("table", ["ledger", "audit"])
async def test_postgresql_ledger_and_audit_refuse_update_delete_truncate(
    pg: PostgresDatabase, table: str
) -> None:
    async with pg.transaction() as tx:
        job_id = await JobRepository(pg).create(tx, new_job(), now=1.0)
        await tx.execute(
            "INSERT INTO audit (guild_id, action, job_id, created_at) "
            "VALUES (1, 'grant', :job, 1.0)",
            {"job": job_id},
        )
    for statement in (
        f"UPDATE {table} SET guild_id = 9",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    ):
        with pytest.raises(ConstraintError, match="append-only"):
            async with pg.transaction() as tx:
                await tx.execute(statement)
    row = await pg.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None and row["n"] == 1


async def test_postgresql_one_settlement_per_job_is_unique(pg: PostgresDatabase) -> None:
    async with pg.transaction() as tx:
        job_id = await JobRepository(pg).create(tx, new_job(), now=1.0)
    refund = (
        "INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period, created_at) "
        "VALUES (1, 3, :job, 'refund', 1, 'p', 2.0)"
    )
    async with pg.transaction() as tx:
        await tx.execute(refund, {"job": job_id})
    with pytest.raises(ConstraintError):
        async with pg.transaction() as tx:
            await tx.execute(refund, {"job": job_id})


async def test_postgresql_two_processes_racing_one_transition_one_wins(pg_url: str) -> None:
    """Two bot processes (two pools) move the same queued job at once: one wins, the other
    is told the job moved, and the job is settled once."""
    one, two = await PostgresDatabase.open(pg_url), await PostgresDatabase.open(pg_url)
    try:
        async with one.transaction() as tx:
            job_id = await JobRepository(one).create(tx, new_job(cost=2), now=1.0)
        for _ in range(5):  # several rounds: the race is not won by the order of the calls
            job = await JobRepository(one).get(job_id)
            assert job is not None and job.status is JobStatus.QUEUED
            results = await asyncio.gather(
                JobRepository(one).transition(job, JobStatus.CANCELLED, 2.0, reason="a"),
                JobRepository(two).transition(job, JobStatus.SUBMITTING, 2.0),
                return_exceptions=True,
            )
            winners = [r for r in results if not isinstance(r, BaseException)]
            assert len(winners) == 1
            assert [type(r) for r in results if isinstance(r, BaseException)] == [StaleTransition]
            if winners[0].status is JobStatus.CANCELLED:
                break
            await JobRepository(two).transition(winners[0], JobStatus.QUEUED, 3.0)
        kinds = [e.kind.value for e in await LedgerRepository(one).for_job(job_id)]
        assert kinds.count("refund") <= 1 and kinds[0] == "reserve"
    finally:
        await one.close()
        await two.close()


async def test_postgresql_the_last_credit_goes_once_across_processes(pg_url: str) -> None:
    """Check-then-write across processes: six requests for the one credit left, from two
    processes at once, make exactly one job (the database lock, not process memory)."""
    dbs = [await PostgresDatabase.open(pg_url) for _ in range(2)]
    policy = QuotaPolicy(daily_credits=1, max_jobs_per_member=100)

    async def policy_for(_: int) -> QuotaPolicy:
        return policy

    clock = FakeClock()
    desks = [JobDesk(db, clock=clock, policy=policy_for, on_created=lambda: None) for db in dbs]
    spec = JobSpec(mode=Mode.TEXT, prompt="x")
    try:
        results = await asyncio.gather(
            *(desks[n % 2].create(JobRequest(1, 2, 3, spec)) for n in range(6)),
            return_exceptions=True,
        )
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        assert (len(made), len(refused)) == (1, 5)
        row = await dbs[0].fetch_one("SELECT COUNT(*) AS n FROM jobs")
        assert row is not None and row["n"] == 1
    finally:
        for db in dbs:
            await db.close()


async def test_postgresql_a_cancelled_unit_of_work_leaves_no_open_transaction(
    pg: PostgresDatabase, pg_url: str
) -> None:
    """A task cancelled while it waits for the database lock, and one cancelled inside its
    unit of work: nothing they wrote stays, no connection idles inside a transaction, and
    the next unit of work runs."""
    other = await PostgresDatabase.open(pg_url)
    jobs = JobRepository(pg)
    inside, created, never = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold_the_lock() -> None:
        async with other.transaction() as tx:
            await tx.execute("UPDATE bot_state SET value = 'x' WHERE key = 'none'")
            inside.set()
            await never.wait()

    async def write_a_job() -> None:
        async with pg.transaction() as tx:
            await jobs.create(tx, new_job(), now=1.0)
            created.set()
            await never.wait()

    try:
        holder = asyncio.create_task(hold_the_lock())
        await inside.wait()
        waiting = asyncio.create_task(write_a_job())
        while await pg.fetch_one(WAITING_FOR_THE_LOCK) is None:  # the server's state: polled
            await asyncio.sleep(0.01)
        waiting.cancel()
        holder.cancel()
        for task in (waiting, holder):
            with pytest.raises(asyncio.CancelledError):
                await task
        inner = asyncio.create_task(write_a_job())
        await created.wait()
        inner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await inner
        idle = await pg.fetch_one(
            "SELECT COUNT(*) AS n FROM pg_stat_activity "
            "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
        )
        assert idle is not None and idle["n"] == 0
        assert await pg.fetch_all("SELECT id FROM jobs") == []
        async with pg.transaction() as tx:
            await jobs.create(tx, new_job(), now=2.0)
        assert len(await pg.fetch_all("SELECT id FROM jobs")) == 1
    finally:
        await other.close()


async def test_postgresql_open_storage_picks_the_engine_by_the_url(
    pg_url: str, tmp_path: Path
) -> None:
    assert is_postgres_url(pg_url) and not is_postgres_url(tmp_path / "x.sqlite3")
    opened = await open_storage(pg_url)
    assert isinstance(opened, PostgresDatabase) and await opened.heartbeat("1")
    await opened.close()
    lite = await open_storage(tmp_path / "x.sqlite3")
    assert isinstance(lite, Database)
    await lite.close()


async def test_postgresql_a_refused_connection_is_one_sentence_without_the_password(
    pg_server: PgServer,
) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{pg_server.port}/no_such_database"
    with pytest.raises(DatabaseOpenError) as refused:
        await open_storage(url)
    assert "s3cret" not in str(refused.value) and "no_such_database" in str(refused.value)
    assert redacted(url) == f"postgresql://postgres:***@127.0.0.1:{pg_server.port}/no_such_database"
