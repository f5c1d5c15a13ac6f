"""Group commit on the shared connection: units of work queued together share one COMMIT.

Each unit is still its own guarded step (a savepoint: one that raises is rolled back
alone), its ``async with`` ends only after the group's real COMMIT (seen here from a
second connection to the same file), a failed COMMIT raises in every unit of the
group, and no cancellation leaves the connection inside a transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from storage.grouping import Group

PUT = "INSERT INTO bot_state (key, value) VALUES (:key, 'v')"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "group.sqlite3")
    yield database
    await database.close()


def stored(path: Path) -> set[str]:
    """The keys committed to the file, read through a connection of another process's kind."""
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT key FROM bot_state")} - {"healthz_heartbeat"}
    finally:
        conn.close()


def path_of(db: Database, tmp_path: Path) -> Path:
    return tmp_path / "group.sqlite3"


async def commits_during(db: Database, work: asyncio.Future[object]) -> int:
    seen: list[str] = []
    await db._conn.set_trace_callback(seen.append)
    await work
    await db._conn.set_trace_callback(None)
    return sum(1 for s in seen if s.strip().upper() == "COMMIT")


async def test_group_commit_units_queued_together_share_one_commit(
    db: Database, tmp_path: Path
) -> None:
    path = path_of(db, tmp_path)
    visible_after: dict[str, bool] = {}

    async def unit(key: str) -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": key})

            async def check() -> None:  # after the real commit: on the disk for others
                visible_after[key] = key in stored(path)

            tx.after_commit(check)
        # The caller is given back its result only once the group committed.
        assert key in stored(path)

    keys = [f"k{n}" for n in range(20)]
    work = asyncio.gather(*(unit(k) for k in keys))
    commits = await commits_during(db, work)
    assert 1 <= commits < 5  # not 20
    assert visible_after == dict.fromkeys(keys, True)
    assert not db._conn.in_transaction


async def test_group_commit_a_failing_unit_rolls_back_alone(db: Database, tmp_path: Path) -> None:
    async def unit(key: str, fail: bool) -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": key})
            await tx.execute(PUT, {"key": key + "-more"})
            if fail:
                raise RuntimeError("this unit changes its mind")

    results = await asyncio.gather(
        unit("a", False), unit("b", True), unit("c", False), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "RuntimeError", "NoneType"]
    assert stored(path_of(db, tmp_path)) == {"a", "a-more", "c", "c-more"}
    assert not db._conn.in_transaction


async def test_group_commit_a_failed_commit_raises_in_every_unit(
    db: Database, tmp_path: Path
) -> None:
    called: list[str] = []

    async def unit(key: str, poison: bool) -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": key})
            if poison:  # a deferred foreign key: only the COMMIT finds it broken
                await tx.execute("PRAGMA defer_foreign_keys = ON")
                await tx.execute(
                    "INSERT INTO ledger (guild_id, user_id, job_id, kind, delta, period,"
                    " created_at) VALUES (1, 1, 999999, 'grant', 1, 'p', 0)"
                )

            async def after() -> None:
                called.append(key)

            tx.after_commit(after)

    results = await asyncio.gather(
        unit("x", True), unit("y", False), unit("z", False), return_exceptions=True
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert called == []  # nothing committed, so no follow-up ran
    assert stored(path_of(db, tmp_path)) == set()
    assert not db._conn.in_transaction
    async with db.transaction() as tx:  # the connection is fine for the next group
        await tx.execute(PUT, {"key": "after"})
    assert stored(path_of(db, tmp_path)) == {"after"}


async def test_group_commit_cancel_while_waiting_for_the_commit(
    db: Database, tmp_path: Path
) -> None:
    """A unit cancelled after its body still waits for the commit; its work is committed."""
    hold = asyncio.Event()
    holding = asyncio.Event()
    done_a = asyncio.Event()

    async def a() -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": "a"})
        done_a.set()

    async def b() -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": "b"})
            holding.set()
            await hold.wait()  # the group cannot commit while b holds the lock

    task_a = asyncio.create_task(a())
    task_b = asyncio.create_task(b())
    await holding.wait()  # a's body is done: it waits for the group's commit
    task_a.cancel()
    await asyncio.sleep(0)
    assert not task_a.done()  # the cancellation waits for the commit
    hold.set()
    with pytest.raises(asyncio.CancelledError):
        await task_a
    await task_b
    assert not done_a.is_set()
    assert stored(path_of(db, tmp_path)) == {"a", "b"}
    assert not db._conn.in_transaction


async def test_group_commit_cancel_in_the_body_keeps_the_others(
    db: Database, tmp_path: Path
) -> None:
    entered = asyncio.Event()
    never = asyncio.Event()

    async def a() -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": "a"})

    async def b() -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": "b"})
            entered.set()
            await never.wait()

    task_a = asyncio.create_task(a())
    task_b = asyncio.create_task(b())
    await entered.wait()
    task_b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_b
    await task_a
    assert stored(path_of(db, tmp_path)) == {"a"}
    assert not db._conn.in_transaction
    assert await db.heartbeat("1")


async def test_group_commit_no_statement_after_the_unit_ended(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute(PUT, {"key": "in"})
    with pytest.raises(RuntimeError):
        await tx.execute(PUT, {"key": "late"})
    assert not db._conn.in_transaction


async def test_group_commit_close_commits_the_open_group(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "group.sqlite3")
    entered = asyncio.Event()

    async def unit() -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": "last"})
            entered.set()

    task = asyncio.create_task(unit())
    await entered.wait()
    await asyncio.sleep(0)
    await db.close()  # commits the group the unit is waiting for
    await task
    assert stored(tmp_path / "group.sqlite3") == {"last"}


async def test_group_commit_lock_stays_with_the_commit_on_the_thread(
    db: Database, tmp_path: Path
) -> None:
    """The committer hands the COMMIT to aiosqlite's thread with the write lock and is gone:
    while the COMMIT waits there (behind a slow call), no unit of the next group runs a
    statement (it would run inline, on this thread, on the same connection); once the
    loop hears the COMMIT ended, the group's units go on and the lock is free."""
    gate = threading.Event()
    slow = asyncio.create_task(db._on_thread(lambda conn: gate.wait(5.0)))
    groups: list[Group] = []
    b_ran = asyncio.Event()

    async def a() -> None:
        async with db.transaction() as tx:
            await tx.execute(PUT, {"key": "a"})
            assert db._group is not None
            groups.append(db._group)

    async def b() -> None:
        async with db.transaction() as tx:
            b_ran.set()
            await tx.execute(PUT, {"key": "b"})

    task_a = asyncio.create_task(a())
    while not groups or groups[0].committer is None:
        await asyncio.sleep(0)
    await groups[0].committer  # it ended once the COMMIT was on the thread's queue
    assert db._lock.locked() and not task_a.done()
    task_b = asyncio.create_task(b())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not b_ran.is_set()  # the next unit waits for the COMMIT, not for a task
    assert stored(path_of(db, tmp_path)) == set()
    gate.set()
    await task_a
    await asyncio.gather(task_b, slow)
    assert stored(path_of(db, tmp_path)) == {"a", "b"}
    assert not db._lock.locked() and not db._conn.in_transaction
