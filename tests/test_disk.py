"""Bounded disk, and a shared connection that no cancellation can leave inside a transaction.

Real SQLite files, the real core against the MiniMax simulator; only the disk's
fullness is injected (a free-space probe, a write that fails with ENOSPC), since
a tiny file system cannot be mounted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import aiohttp
import pytest

from hailuo.media.downloads import Downloader, sweep_temporary
from hailuo.media.housekeeping import ImageSweeper
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused, Actor
from providers.minimax import MiniMaxProvider
from storage.db import Database
from storage.jobs import JobRepository
from storage.migrating import migration_scripts, statements_of
from tests import media
from tests.core import Core, build_core
from tests.e2e import running_bot
from tests.provider_matrix import ledger_kinds
from tests.sims.minimax import MiniMaxSimulator
from tests.test_approval import GUILD, MEMBER, moderated_core

HOUR = 3600.0


# -- a cancelled task never leaves the shared connection inside a transaction ---------------


async def test_transaction_cancel_while_awaiting_begin_leaves_no_open_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cancel.sqlite3"
    db = await Database.open(path)
    # Another process holds the write lock, so our BEGIN IMMEDIATE is tried again after pauses.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    begun = asyncio.Event()

    def traced(statement: str) -> None:  # runs on the thread that runs the statement
        if statement.startswith("BEGIN IMMEDIATE"):
            loop.call_soon_threadsafe(begun.set)

    await db._conn.set_trace_callback(traced)

    async def write() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO bot_state (key, value) VALUES ('never', 'x')")

    task = asyncio.create_task(write())
    await begun.wait()  # the BEGIN is on its way to SQLite
    task.cancel()
    other.execute("ROLLBACK")  # the lock frees: the BEGIN that was cancelled now succeeds
    with pytest.raises(asyncio.CancelledError):
        await task
    other.close()
    await db._conn.set_trace_callback(None)

    assert not db._conn.in_transaction
    # Every later write works, and the cancelled one left nothing behind.
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO bot_state (key, value) VALUES ('later', 'y')")
    assert await db.heartbeat("1")
    rows = await db.fetch_all("SELECT key FROM bot_state WHERE key IN ('never', 'later')")
    assert [r[0] for r in rows] == ["later"]
    await db.close()


async def test_transaction_cancel_in_the_body_rolls_back(db: Database) -> None:
    entered = asyncio.Event()
    never = asyncio.Event()

    async def write() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO bot_state (key, value) VALUES ('half', 'x')")
            entered.set()
            await never.wait()

    task = asyncio.create_task(write())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not db._conn.in_transaction
    assert await db.fetch_one("SELECT 1 FROM bot_state WHERE key = 'half'") is None
    assert await db.heartbeat("2")


async def test_transaction_left_open_is_rolled_back_on_entry(db: Database) -> None:
    await db._conn.execute("BEGIN")  # as a bug elsewhere would leave it
    await db._conn.execute("INSERT INTO bot_state (key, value) VALUES ('stray', 'x')")
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO bot_state (key, value) VALUES ('next', 'y')")
    rows = await db.fetch_all("SELECT key FROM bot_state WHERE key IN ('stray', 'next')")
    assert [r[0] for r in rows] == ["next"]


# -- /healthz proves a write and room on the disk ------------------------------------------


async def _health(app: object) -> tuple[int, dict[str, object]]:
    port = app.health.bound_port  # type: ignore[attr-defined]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/healthz") as resp,
    ):
        return resp.status, await resp.json()


async def test_healthz_fails_when_the_database_cannot_take_a_write(env) -> None:
    async with running_bot(env) as app:
        status, body = await _health(app)
        assert status == 200 and body["database"] is True and body["disk"] is True
        db = app.bot.services.db
        # Reads still answer (the old ping passed), writes are refused.
        await db._conn.execute("PRAGMA query_only = ON")
        assert await db.ping()
        status, body = await _health(app)
        assert status == 503
        assert body["database"] is False and body["gateway"] is True
        await db._conn.execute("PRAGMA query_only = OFF")
        status, _ = await _health(app)
        assert status == 200


async def test_healthz_fails_when_the_disk_has_no_room(env) -> None:
    # More free space asked for than any disk has: the real probe of the data directory.
    async with running_bot({**env, "HAILUO_MIN_FREE_MB": str(2**40)}) as app:
        status, body = await _health(app)
        assert status == 503
        assert body["disk"] is False and body["database"] is True


async def test_healthz_fails_when_the_worker_died(env) -> None:
    async with running_bot(env) as app:
        assert (await _health(app))[0] == 200
        task = app.bot._worker_task
        assert task is not None
        task.cancel()
        await asyncio.wait({task})
        status, body = await _health(app)
        assert status == 503 and body["worker"] is False


async def test_sigterm_close_with_a_stuck_step_still_disconnects(env) -> None:
    """The old close() raised TimeoutError and never closed the client: now it always does."""
    stuck = asyncio.Event()
    never = asyncio.Event()

    async def step_that_never_ends() -> None:
        stuck.set()
        await never.wait()

    async with running_bot({**env, "HAILUO_STOP_GRACE_SECONDS": "0.2"}) as app:
        app.bot.worker.sweeps.append(step_that_never_ends)
        app.bot.worker.wake()
        await stuck.wait()
        await app.bot.close()  # returns, no TimeoutError
        assert app.bot.is_closed()
        task = app.bot._worker_task
        assert task is not None and task.cancelled()


# -- downloads: under the data directory, swept at start-up, waiting out a full disk --------


async def test_disk_leftover_downloads_are_swept_at_start_up(env, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"  # beside the database (tmp_path / "bot.sqlite3")
    tmp.mkdir()
    (tmp / "hailuo-crashed.mp4").write_bytes(b"\0" * 1024)
    (tmp / "keep.txt").write_text("not ours")
    async with running_bot(env) as app:
        assert app.bot.worker.deliverer.downloader.directory == tmp
        assert not (tmp / "hailuo-crashed.mp4").exists()
        assert (tmp / "keep.txt").exists()
    assert sweep_temporary(tmp) == 0


class Disk:
    """The injected disk: how much is free, and whether a write fails as ENOSPC."""

    def __init__(self) -> None:
        self.free = 0
        self.enospc = False
        self.probes = 0

    def probe(self, directory: Path) -> int:
        assert directory.is_dir()
        self.probes += 1
        return self.free


class FullDiskDownloader(Downloader):
    """The real downloader, whose writes fail with ENOSPC while the disk says so."""

    disk: Disk

    def _write(self, handle: IO[bytes], chunk: bytes) -> None:
        if self.disk.enospc:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super()._write(handle, chunk)


@pytest.fixture
async def sim(clock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []


@pytest.fixture
async def disk_core(
    db, clock, sim, tmp_path: Path
) -> AsyncIterator[tuple[Core, Disk, FullDiskDownloader]]:
    async with aiohttp.ClientSession() as session:
        provider = MiniMaxProvider(session, api_key="mm-test-key", base_url=sim.base_url)
        core = build_core(db, clock, session, {"minimax": provider})
        disk = Disk()
        directory = tmp_path / "tmp"
        directory.mkdir()
        downloader = FullDiskDownloader(
            max_bytes=50 * 2**20,
            allow_private=True,
            directory=directory,
            min_free=64 * 2**20,
            free_space=disk.probe,
        )
        downloader.disk = disk
        core.worker.deliverer.downloader = downloader
        yield core, disk, downloader


async def _wait_while_full(core: Core, job_id: int, ticks: int) -> None:
    """Tick well past the delivery attempt budget while the disk is full."""
    for _ in range(ticks):
        core.clock.advance(400)  # past any back-off (capped at 5 min), so every tick tries again
        await core.worker.tick()
        job = await core.jobs.get(job_id)
        assert job is not None and job.status is JobStatus.SUCCEEDED
        assert job.delivery_attempts == 0  # a full disk never spends the delivery budget


async def test_disk_full_before_download_waits_and_completes_when_space_returns(
    disk_core, sim, db
) -> None:
    core, disk, downloader = disk_core
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUCCEEDED)
    limit = 10  # the old rule gave up after 5 attempts: twice that, and still waiting
    await _wait_while_full(core, job.id, ticks=limit * 2)
    assert disk.probes >= limit * 2
    assert sim.downloads == 0  # nothing fetched while there is no room
    assert await ledger_kinds(db, job.id) == ["reserve"]  # never refunded at once

    disk.free = 10 * 2**30  # room again
    core.clock.advance(400)  # the next try is at most one capped back-off away
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert core.notifier.posted[0].data == sim.video
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
    assert list(downloader.directory.iterdir()) == []  # type: ignore[union-attr]


async def test_disk_full_while_writing_waits_and_completes(disk_core, sim, db) -> None:
    core, disk, downloader = disk_core
    disk.free = 10 * 2**30  # the probe says yes, but the writes fail (ENOSPC)
    disk.enospc = True
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUCCEEDED)
    limit = 10  # the old rule gave up after 5 attempts: twice that, and still waiting
    await _wait_while_full(core, job.id, ticks=limit * 2)
    assert sim.downloads >= limit * 2
    assert list(downloader.directory.iterdir()) == []  # type: ignore[union-attr]
    assert await ledger_kinds(db, job.id) == ["reserve"]

    disk.enospc = False
    core.clock.advance(400)
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert len(core.notifier.posted) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]


# -- stored images: shared by hash, deleted after the window, the file shrinks --------------


def _image(seed: int, size: int = 1_500_000) -> bytes:
    return bytes([seed]) * 16 + os.urandom(size)


async def _end(core: Core, job_id: int) -> None:
    job = await core.jobs.get(job_id)
    assert job is not None
    await core.jobs.transition(job, JobStatus.CANCELLED, core.clock(), reason="test")


async def test_disk_images_are_shared_by_hash_deleted_after_the_window_and_the_file_shrinks(
    disk_core, db, tmp_path: Path
) -> None:
    core, _, _ = disk_core
    spec = JobSpec(mode=Mode.IMAGE, prompt="move")
    shared = _image(1)
    parent = await core.new_job(spec, images={"first": ("image/png", shared)})
    await _end(core, parent.id)  # not submitted: the worker never runs here
    reroll = await core.new_job(spec, images={"first": ("image/png", shared)})
    others = [
        await core.new_job(spec, user_id=n, images={"first": ("image/jpeg", _image(n))})
        for n in (2, 3)
    ]
    for job in others:
        await _end(core, job.id)
    count = await db.fetch_one("SELECT COUNT(*) FROM images")
    assert count is not None and count[0] == 3  # the re-roll's image is stored once
    assert (await core.jobs.images(reroll.id))["first"].data == shared

    path = tmp_path / "hailuo.sqlite3"
    sweeper = ImageSweeper(core.jobs, core.clock, retention=72 * HOUR, every=HOUR)
    await sweeper.sweep()  # inside the window: nothing goes
    assert (await core.jobs.images(parent.id))["first"].data == shared
    await db.incremental_vacuum()
    size_before = path.stat().st_size

    core.clock.advance(72 * HOUR + 1)
    await sweeper.sweep()
    assert await core.jobs.images(parent.id) == {}
    assert [await core.jobs.images(job.id) for job in others] == [{}, {}]
    # The re-roll is still open: its (shared) image stays.
    assert (await core.jobs.images(reroll.id))["first"].data == shared
    count = await db.fetch_one("SELECT COUNT(*) FROM images")
    assert count is not None and count[0] == 1
    assert path.stat().st_size < size_before - 2_500_000  # two images' pages given back

    await _end(core, reroll.id)
    core.clock.advance(72 * HOUR + 1)
    await sweeper.sweep()
    count = await db.fetch_one("SELECT COUNT(*) FROM images")
    assert count is not None and count[0] == 0


async def test_disk_image_sweep_runs_at_most_once_per_period(disk_core) -> None:
    core, _, _ = disk_core
    spec = JobSpec(mode=Mode.IMAGE, prompt="move")
    sweeper = ImageSweeper(core.jobs, core.clock, retention=60, every=HOUR)
    await sweeper.sweep()  # the first sweep of the period
    job = await core.new_job(spec, images={"first": ("image/png", _image(4, 1000))})
    await _end(core, job.id)
    core.clock.advance(120)  # past the retention, not yet the next period
    await sweeper.sweep()
    assert "first" in await core.jobs.images(job.id)
    core.clock.advance(HOUR)
    await sweeper.sweep()
    assert await core.jobs.images(job.id) == {}


async def test_disk_rows_of_older_versions_are_migrated_and_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    version = 0
    for number, _, sql in migration_scripts():
        if number >= 5:
            break
        for statement in statements_of(sql):
            conn.execute(statement)
        version = number
    conn.execute(f"PRAGMA user_version = {version}")
    same = b"\x89PNG same bytes"
    for job_id in (1, 2):
        conn.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, status, spec, cost, period, "
            "locale, created_at, updated_at) VALUES (?, 1, 2, 3, 'queued', ?, 1, 'p', 'en-US', "
            "0, 0)",
            (job_id, JobSpec(mode=Mode.IMAGE, prompt="x").to_json()),
        )
        conn.execute(
            "INSERT INTO job_images (job_id, role, mime, data) VALUES (?, 'first', ?, ?)",
            (job_id, "image/png", same),
        )
    conn.execute(
        "INSERT INTO job_images (job_id, role, mime, data) VALUES (2, 'last', 'image/jpeg', ?)",
        (b"\xff\xd8 other",),
    )
    conn.commit()
    conn.close()

    db = await Database.open(path)
    try:
        jobs = JobRepository(db)
        assert (await jobs.images(1))["first"].data == same
        second = await jobs.images(2)
        assert second["first"].data == same and second["last"].mime == "image/jpeg"
        count = await db.fetch_one("SELECT COUNT(*) FROM images")
        assert count is not None and count[0] == 2  # the same bytes once
        mode = await db.fetch_one("PRAGMA auto_vacuum")
        assert mode is not None and mode[0] == 2  # INCREMENTAL, after the one-time VACUUM
    finally:
        await db.close()


async def test_disk_temporary_files_are_ours_only(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    assert sweep_temporary(tmp) == 0 and tmp.is_dir()
    (tmp / "hailuo-a.mp4").write_bytes(b"x")
    (tmp / "hailuo-b.mp4").write_bytes(b"y")
    (tmp / "other.mp4").write_bytes(b"z")
    assert sweep_temporary(tmp) == 2
    assert [p.name for p in tmp.iterdir()] == ["other.mp4"]
    with contextlib.suppress(FileNotFoundError):
        (tmp / "other.mp4").unlink()


async def test_disk_reroll_shares_the_image_then_is_refused_once_it_was_swept(
    db, clock, sim
) -> None:
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(db, clock, sim, session, approval_mode="off")
        png = media.make_image("PNG", 640, 480)
        spec = JobSpec(mode=Mode.IMAGE, prompt="waves")
        first = await mod.core.new_job(spec, user_id=MEMBER, images={"first": ("image/png", png)})
        first = await mod.core.run_until(first.id, JobStatus.DELIVERED)
        second = await mod.controls.reroll(GUILD, first.id, Actor(MEMBER))
        count = await db.fetch_one("SELECT COUNT(*) FROM images")
        assert count is not None and count[0] == 1  # one copy, two references
        second = await mod.core.run_until(second.id, JobStatus.DELIVERED)

        clock.advance(72 * HOUR + 1)
        await ImageSweeper(mod.core.jobs, clock, retention=72 * HOUR).sweep()
        assert await mod.core.jobs.images(first.id) == {}
        with pytest.raises(ActionRefused) as refusal:
            await mod.controls.reroll(GUILD, first.id, Actor(MEMBER))
        assert refusal.value.rule == "control.reroll.images_gone"
        assert len(mod.sim.submits) == 2
        await mod.queue.settled()
