"""Storage on a real SQLite file and a real PostgreSQL server (each test that uses ``db`` runs
on both): migrations, guarded transitions, the append-only ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hailuo.model.job import NewJob
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus, can_transition
from storage.db import Database
from storage.jobs import JobRepository, StaleTransition
from storage.ledger import LedgerRepository
from tests.pg_server import BOTH_ENGINES

SNAPSHOT = Path(__file__).with_name("schema_snapshot.sql")
ENGINES = BOTH_ENGINES


def new_job(cost: int = 1) -> NewJob:
    return NewJob(
        guild_id=1,
        channel_id=2,
        user_id=3,
        spec=JobSpec(mode=Mode.TEXT, prompt="x"),
        cost=cost,
        period="2026-11-26",
    )


async def schema_of(db: Database) -> str:
    rows = await db.fetch_all(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY type, name"
    )
    return "\n".join(row[0] + ";" for row in rows) + "\n"


@pytest.mark.sqlite_only
async def test_migrations_match_the_snapshot(db: Database) -> None:
    assert await db.schema_version() >= 1
    schema = await schema_of(db)
    if not SNAPSHOT.exists():
        SNAPSHOT.write_text(schema)
        pytest.fail("tests/schema_snapshot.sql was missing: written now, review and commit it")
    assert schema == SNAPSHOT.read_text(), "schema changed: update tests/schema_snapshot.sql"


async def test_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "twice.sqlite3"
    first = await Database.open(path)
    version = await first.schema_version()
    await first.close()
    second = await Database.open(path)
    assert await second.schema_version() == version
    await second.close()


@pytest.mark.sqlite_only
async def test_wal_mode(db: Database) -> None:
    row = await db.fetch_one("PRAGMA journal_mode")
    assert row is not None and row[0] == "wal"


async def test_create_reserves_in_the_same_transaction(db: Database) -> None:
    jobs = JobRepository(db)
    async with db.transaction() as tx:
        job_id = await jobs.create(tx, new_job(cost=2), now=10.0)
    entries = await LedgerRepository(db).for_job(job_id)
    assert [(e.kind.value, e.delta) for e in entries] == [("reserve", -2)]


async def test_a_failed_creation_writes_nothing(db: Database) -> None:
    jobs = JobRepository(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await jobs.create(tx, new_job(), now=10.0)
            raise RuntimeError("crash before commit")
    assert await db.fetch_all("SELECT * FROM jobs") == []
    assert await db.fetch_all("SELECT * FROM ledger") == []


async def test_transition_is_compare_and_set(db: Database) -> None:
    jobs = JobRepository(db)
    async with db.transaction() as tx:
        job_id = await jobs.create(tx, new_job(), now=1.0)
    job = await jobs.get(job_id)
    assert job is not None
    moved = await jobs.transition(job, JobStatus.SUBMITTING, 2.0, provider="minimax")
    assert moved.status is JobStatus.SUBMITTING and moved.provider == "minimax"
    with pytest.raises(StaleTransition):  # the stale copy still says "queued"
        await jobs.transition(job, JobStatus.CANCELLED, 3.0)
    entries = await LedgerRepository(db).for_job(job_id)
    assert [e.kind.value for e in entries] == ["reserve"]


async def test_disallowed_transition_is_refused(db: Database) -> None:
    jobs = JobRepository(db)
    async with db.transaction() as tx:
        job_id = await jobs.create(tx, new_job(), now=1.0)
    job = await jobs.get(job_id)
    assert job is not None
    with pytest.raises(ValueError, match="not an allowed move"):
        await jobs.transition(job, JobStatus.DELIVERED, 2.0)


async def test_terminal_states_settle_exactly_once(db: Database) -> None:
    jobs = JobRepository(db)
    async with db.transaction() as tx:
        job_id = await jobs.create(tx, new_job(cost=2), now=1.0)
    job = await jobs.get(job_id)
    assert job is not None
    failed = await jobs.transition(job, JobStatus.CANCELLED, 2.0, reason="member cancelled")
    assert failed.finished_at == 2.0
    entries = await LedgerRepository(db).for_job(job_id)
    assert [(e.kind.value, e.delta, e.reason) for e in entries] == [
        ("reserve", -2, "job created"),
        ("refund", 2, "member cancelled"),
    ]


async def test_ledger_is_append_only(db: Database) -> None:
    jobs = JobRepository(db)
    async with db.transaction() as tx:
        await jobs.create(tx, new_job(), now=1.0)
    for statement in ("UPDATE ledger SET delta = 100", "DELETE FROM ledger"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as tx:
                await tx.execute(statement)


async def test_status_column_refuses_unknown_words(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO jobs (guild_id, channel_id, user_id, status, spec, cost, period, "
                "created_at, updated_at) VALUES (1, 2, 3, 'lost', '{}', 1, 'p', 0, 0)"
            )


@pytest.mark.parametrize(
    ("src", "dst", "allowed"),
    [
        (JobStatus.QUEUED, JobStatus.SUBMITTING, True),
        (JobStatus.SUBMITTING, JobStatus.QUEUED, True),
        (JobStatus.SUBMITTING, JobStatus.CANCELLED, False),
        (JobStatus.SUCCEEDED, JobStatus.CANCELLED, False),
        (JobStatus.DELIVERED, JobStatus.FAILED, False),
        (JobStatus.AWAITING_APPROVAL, JobStatus.EXPIRED, True),
    ],
)
def test_transition_table(src: JobStatus, dst: JobStatus, allowed: bool) -> None:
    assert can_transition(src, dst) is allowed


@pytest.mark.sqlite_only
async def test_commits_are_durable_on_power_loss(db: Database) -> None:
    """synchronous=FULL: a lost ``submitting`` mark could resend a job and charge twice."""
    row = await db.fetch_one("PRAGMA synchronous")
    assert row is not None and row[0] == 2  # FULL
