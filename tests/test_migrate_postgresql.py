"""``python -m hailuo migrate --to postgresql://…`` and ``python -m hailuo backup PATH``.

A SQLite file with real history (jobs in every state, images, grants and resets,
budgets, tiers, prices, moderation, audit, the command hash) moves into an empty
PostgreSQL database: every count and balance matches, the storage reopened on
PostgreSQL reads the open jobs and carries them on. A target with rows is refused.
A backup taken while writes go on opens and passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hailuo.cli import main
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.job import Job
from hailuo.model.moderation import DAY
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from storage.approvals import ApprovalDecision
from storage.audit import AuditAction
from storage.blocklist import BlocklistKind
from storage.db import Database
from storage.opening import AnyDatabase
from storage.postgres import PostgresDatabase
from tests.pg_server import PgServer
from tests.support import FakeClock

GUILD, OTHER_GUILD, ADMIN = 1, 2, 100
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
#: Each state a job can be in, and the path that brings a queued job there.
PATHS: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.QUEUED: (),
    JobStatus.SUBMITTING: (JobStatus.SUBMITTING,),
    JobStatus.SUBMITTED: (JobStatus.SUBMITTING, JobStatus.SUBMITTED),
    JobStatus.RUNNING: (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.RUNNING),
    JobStatus.SUCCEEDED: (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.SUCCEEDED),
    JobStatus.DELIVERED: (
        JobStatus.SUBMITTING,
        JobStatus.SUBMITTED,
        JobStatus.SUCCEEDED,
        JobStatus.DELIVERED,
    ),
    JobStatus.DELIVERY_FAILED: (
        JobStatus.SUBMITTING,
        JobStatus.SUBMITTED,
        JobStatus.SUCCEEDED,
        JobStatus.DELIVERY_FAILED,
    ),
    JobStatus.FAILED: (JobStatus.SUBMITTING, JobStatus.FAILED),
    JobStatus.CANCELLED: (JobStatus.CANCELLED,),
}
HELD = (JobStatus.AWAITING_APPROVAL, JobStatus.REJECTED, JobStatus.EXPIRED)


async def policy_for(_: int) -> QuotaPolicy:
    return QuotaPolicy(daily_credits=100, max_jobs_per_member=100, max_jobs_per_guild=100)


async def make_history(db: AnyDatabase, clock: FakeClock) -> dict[int, JobStatus]:
    """Jobs in every state over two servers, and every other kind of row the bot keeps."""
    desk = JobDesk(db, clock=clock, policy=policy_for, on_created=lambda: None)
    made: dict[int, JobStatus] = {}
    spec = JobSpec(mode=Mode.TEXT, prompt="a cat")
    for n, (status, path) in enumerate(PATHS.items()):
        guild = GUILD if n % 2 else OTHER_GUILD
        images = {"first": ("image/png", PNG)} if n % 3 == 0 else {}
        job = await desk.create(JobRequest(guild, 10, 200 + n % 3, spec, images=images))
        for step in path:
            extra = {"provider": "minimax"} if step is JobStatus.SUBMITTING else {}
            if step is JobStatus.SUBMITTED:
                extra = {"provider_task_id": f"task-{job.id}", "submitted_at": clock()}
            job = await db.jobs.transition(job, step, clock(), **extra)
            clock.advance(5)
        made[job.id] = status
    for n, end in enumerate(HELD):
        job = await held_job(db, clock, 300 + n)
        await db.approvals.create(job.id, GUILD, job.user_id, now=clock(), expires_at=clock() + DAY)
        if end is not JobStatus.AWAITING_APPROVAL:
            decision = ApprovalDecision(end.value)
            async with db.transaction() as tx:
                await db.approvals.decide(job.id, decision, by=ADMIN, now=clock(), tx=tx)
                await db.jobs.transition(job, end, clock(), tx=tx)
        made[job.id] = end
    await desk.grant(GUILD, 201, 5, actor_id=ADMIN)
    await desk.reset(GUILD, 202, actor_id=ADMIN)
    await db.guilds.update_settings(GUILD, actor_id=ADMIN, now=clock(), daily_budget=50)
    await db.guilds.set_tier(GUILD, 77, 20, actor_id=ADMIN, now=clock())
    await db.guilds.set_cost(GUILD, ("hailuo-02", "768P", 6), 3, actor_id=ADMIN, now=clock())
    await db.guilds.set_price(
        GUILD, ("minimax", "hailuo-02", "768P", 6), 300_000, actor_id=ADMIN, now=clock()
    )
    await db.moderation.update(GUILD, {"approval_mode": "everyone"}, actor_id=ADMIN, now=clock())
    await db.blocklist.add(GUILD, BlocklistKind.WORD, "spam", added_by=ADMIN, now=clock())
    await db.blocks.block(GUILD, 299, by=ADMIN, reason="test", now=clock())
    await db.strikes.add(GUILD, 298, job_id=None, rule="moderation", now=clock())
    await db.audit.append(GUILD, AuditAction.VIDEO_DELETED, actor_id=ADMIN, now=clock())
    await db.jobs.put_state("command_hash", "abc123")
    await db.jobs.put_duration("minimax/768P/6", [100.0, 120.5], clock())
    await db.delivery.set_place(GUILD, "thread", actor_id=ADMIN, now=clock())
    await db.delivery.set_notify(GUILD, 201, "dm", now=clock())
    return made


async def held_job(db: AnyDatabase, clock: FakeClock, user_id: int) -> Job:
    from hailuo.model.job import NewJob

    spec = JobSpec(mode=Mode.TEXT, prompt="held")
    async with db.transaction() as tx:
        job_id = await db.jobs.create(
            tx,
            NewJob(GUILD, 10, user_id, spec, 1, "p", status=JobStatus.AWAITING_APPROVAL),
            clock(),
        )
    job = await db.jobs.get(job_id)
    assert job is not None
    return job


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_migrate_postgresql_moves_a_history_and_the_bot_carries_on(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "hailuo.sqlite3"
    clock = FakeClock()

    async def build() -> tuple[dict[int, JobStatus], list[int]]:
        db = await Database.open(source)
        try:
            made = await make_history(db, clock)
            return made, [job.id for job in await db.jobs.open_jobs()]
        finally:
            await db.close()

    made, open_ids = asyncio.run(build())
    assert set(made.values()) == set(JobStatus)  # every state the job table knows
    name, url = asyncio.run(pg_server.create_empty_database())
    try:
        code, out = run_cli("migrate", "--to", url, "--from", str(source), capsys=capsys)
        assert code == 0, out
        assert "every count and balance matches" in out
        assert "jobs" in out and "ledger" in out and "audit" in out

        async def reopen() -> None:
            pg = await PostgresDatabase.open(url)
            try:
                assert [job.id for job in await pg.jobs.open_jobs()] == open_ids
                for job_id, status in made.items():
                    job = await pg.jobs.get(job_id)
                    assert job is not None and job.status is status
                assert await pg.jobs.get_state("command_hash") == "abc123"
                assert (await pg.jobs.images(min(made)))["first"].data == PNG
                config = await pg.guilds.config(GUILD)
                assert config.settings.daily_budget == 50 and config.tiers == {77: 20}
                # The bot carries on: an open job moves on, a new job takes the next id.
                queued = next(j for j in await pg.jobs.open_jobs() if j.status.value == "queued")
                moved = await pg.jobs.transition(queued, JobStatus.CANCELLED, clock(), reason="x")
                assert [e.kind.value for e in await pg.ledger.for_job(moved.id)] == [
                    "reserve",
                    "refund",
                ]
                desk = JobDesk(pg, clock=clock, policy=policy_for, on_created=lambda: None)
                fresh = await desk.create(
                    JobRequest(GUILD, 10, 201, JobSpec(mode=Mode.TEXT, prompt="x"))
                )
                assert fresh.id > max(made)
            finally:
                await pg.close()

        asyncio.run(reopen())
        # The target now holds rows: a second move is refused, in one sentence.
        code, out = run_cli("migrate", "--to", url, "--from", str(source), capsys=capsys)
        assert code == 2
        assert "already holds data" in out and out.count("\n") == 1
    finally:
        asyncio.run(pg_server.drop_database(name))


def test_migrate_postgresql_refuses_what_is_not_a_postgresql_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli("migrate", "--to", str(tmp_path / "x.db"), capsys=capsys)
    assert code == 2 and "postgresql://" in out


async def test_backup_while_writes_go_on_is_a_sound_copy(tmp_path: Path) -> None:
    source, dest = tmp_path / "live.sqlite3", tmp_path / "copy.sqlite3"
    db = await Database.open(source)
    clock = FakeClock()
    desk = JobDesk(db, clock=clock, policy=policy_for, on_created=lambda: None)
    spec = JobSpec(mode=Mode.TEXT, prompt="x")
    stop = asyncio.Event()

    async def writes() -> int:
        count = 0
        while not stop.is_set():
            job = await desk.create(JobRequest(GUILD, 10, 500 + count % 50, spec))
            await db.jobs.transition(job, JobStatus.CANCELLED, clock())
            count += 1
        return count

    try:
        writer = asyncio.create_task(writes())
        for _ in range(20):  # some history before the copy starts
            await db.jobs.put_state("tick", str(clock()))
        from hailuo.cli import backup

        out = _Stream()
        code = await backup(source, dest, out)
        stop.set()
        written = await writer
    finally:
        await db.close()
    assert code == 0 and "integrity ok" in out.text and written >= 1
    copy = sqlite3.connect(dest)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        jobs = copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        refunds = copy.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'refund'").fetchone()[0]
        reserves = copy.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'reserve'").fetchone()[0]
    finally:
        copy.close()
    assert reserves == jobs and refunds <= jobs  # one moment: no half-written unit of work
    # A second backup to the same name is refused rather than overwriting it.
    again = _Stream()
    assert await backup(source, dest, again) == 2 and "already exists" in again.text


class _Stream:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        return None
