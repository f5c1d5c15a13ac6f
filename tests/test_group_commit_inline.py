"""A unit of work's statements run inline, on the event loop (``-k group_commit``).

The writer holds the connection for the whole unit, so a statement inside a unit needs
no trip to aiosqlite's thread: gathered statements run in the order issued, each with
its own result or error; a failing one changes nothing for the others, and one issued
after its unit ended is refused as before. What may hold the connection for long stays
off the loop: a sweep's statements (``bulk()``), and a unit's statements while a
read outside any unit runs on aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage import grouping
from storage.db import Database, statements


def unit_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the thread each statement of a unit of work runs on, in order."""
    threads: list[int] = []
    real = grouping.in_unit

    def counted(
        conn: sqlite3.Connection, unit: grouping.Unit, work: Callable[..., Any], *args: Any
    ) -> Any:
        threads.append(threading.get_ident())
        return real(conn, unit, work, *args)

    monkeypatch.setattr(grouping, "in_unit", counted)
    return threads


async def test_group_commit_gathered_statements_run_inline_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.open(tmp_path / "inline.sqlite3")
    try:
        async with db.transaction() as uow:
            tx = statements(uow)
            await tx.execute("CREATE TABLE t (v INTEGER)")
            threads = unit_threads(monkeypatch)
            first, failed, wrote, after = await asyncio.gather(
                tx.fetch_one("SELECT 1 AS v"),
                tx.fetch_one("SELECT * FROM missing"),
                tx.execute("INSERT INTO t (v) VALUES (7)"),
                tx.fetch_all("SELECT v FROM t"),
                return_exceptions=True,
            )
            assert threads == [threading.get_ident()] * 4  # four statements, no hop
            assert first is not None and not isinstance(first, BaseException)
            assert first["v"] == 1
            assert isinstance(failed, sqlite3.OperationalError)
            assert wrote == 1
            assert isinstance(after, list) and [r["v"] for r in after] == [7]  # in order
        async with db.transaction() as uow:
            rows = await statements(uow).fetch_all("SELECT v FROM t")
        assert [r["v"] for r in rows] == [7]  # the failed read undid nothing
    finally:
        await db.close()


async def test_group_commit_statement_after_its_unit_ended_is_refused(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "ended.sqlite3")
    try:
        async with db.transaction() as uow:
            tx = statements(uow)
        with pytest.raises(RuntimeError):
            await tx.fetch_one("SELECT 1")
    finally:
        await db.close()


async def test_group_commit_bulk_unit_runs_off_the_loop_in_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's statements may scan: they run on aiosqlite's thread, in the same group of
    units as the inline ones (committed together, each still its own guarded step)."""
    db = await Database.open(tmp_path / "sweep.sqlite3")
    try:
        async with db.transaction() as uow:
            await statements(uow).execute("CREATE TABLE t (v INTEGER)")
        threads = unit_threads(monkeypatch)

        async def sweep() -> None:
            async with db.bulk() as tx:
                await tx.execute("INSERT INTO t (v) VALUES (1)")
                await tx.execute("DELETE FROM t WHERE v = 1")
                await tx.execute("INSERT INTO t (v) VALUES (2)")

        async def failing() -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (3)")
                raise LookupError("undone alone")

        async def inline() -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (4)")

        outcomes = await asyncio.gather(sweep(), failing(), inline(), return_exceptions=True)
        assert isinstance(outcomes[1], LookupError) and outcomes[0] is None
        loop_thread = threading.get_ident()
        assert len(threads) == 5
        assert all(ident != loop_thread for ident in threads[:3])  # the sweep's, off the loop
        assert threads[3:] == [loop_thread, loop_thread]  # the others', inline
        async with db.transaction() as uow:
            rows = await statements(uow).fetch_all("SELECT v FROM t ORDER BY v")
        assert [r["v"] for r in rows] == [2, 4]
    finally:
        await db.close()


@pytest.mark.parametrize("alone", [True, False])
async def test_group_commit_bulk_statement_cancelled_on_the_thread_is_undone(
    tmp_path: Path, alone: bool
) -> None:
    """A bulk unit cancelled while its statement waits on aiosqlite's thread: the statement
    still runs there, then the unit is rolled back, never the other way round (a rollback
    first would leave the statement's write to be committed by a later unit, or a stray
    transaction open). Alone in its group, or after a unit whose work stays."""
    db = await Database.open(tmp_path / "cancelled.sqlite3")
    busy, release = threading.Event(), threading.Event()
    try:
        async with db.transaction() as uow:
            await statements(uow).execute("CREATE TABLE t (v INTEGER)")

        def hold() -> None:  # aiosqlite's thread is busy with something else a while
            busy.set()
            release.wait(5)

        db._conn._tx.put_nowait((None, hold))
        await asyncio.to_thread(busy.wait, 5)
        entered = asyncio.Event()

        async def kept() -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (1)")

        async def sweep() -> None:
            async with db.bulk() as uow:
                entered.set()
                await statements(uow).execute("INSERT INTO t (v) VALUES (2)")

        first = asyncio.ensure_future(kept()) if not alone else None
        task = asyncio.ensure_future(sweep())
        await entered.wait()
        for _ in range(5):  # its INSERT is queued behind ``hold`` on the thread
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        if first is not None:
            await first
        async with db.transaction() as uow:  # a later unit commits what the group holds
            await statements(uow).execute("INSERT INTO t (v) VALUES (3)")
        rows = await db.fetch_all("SELECT v FROM t ORDER BY v")
        assert [r["v"] for r in rows] == ([3] if alone else [1, 3])
        assert not db._conn.in_transaction
    finally:
        release.set()
        await db.close()


async def test_group_commit_begin_cancelled_on_the_thread_never_undoes_a_later_unit(
    tmp_path: Path,
) -> None:
    """A unit cancelled while its group's ``BEGIN`` waits on aiosqlite's thread (behind a
    read there): the ``BEGIN`` runs before the cancellation goes on. Else it would run
    later, find the next unit's transaction open, roll it back and begin anew, and that
    unit would be told it committed what it lost."""
    db = await Database.open(tmp_path / "begin.sqlite3")
    busy, release = threading.Event(), threading.Event()
    try:
        async with db.transaction() as uow:
            await statements(uow).execute("CREATE TABLE t (v INTEGER)")

        def hold() -> None:  # a read outside any unit, holding the connection on the thread
            busy.set()
            release.wait(5)

        db._conn._tx.put_nowait((None, hold))
        await asyncio.to_thread(busy.wait, 5)
        db.reading += 1  # as ``_outside`` counts it while it runs there

        async def write(value: int) -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (?)", (value,))

        cancelled = asyncio.ensure_future(write(1))
        for _ in range(5):  # its BEGIN is queued behind ``hold`` on the thread
            await asyncio.sleep(0)
        cancelled.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        db.reading -= 1  # the read is back: the next unit's statements run inline
        later = asyncio.ensure_future(write(2))
        for _ in range(10):
            await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(later, 5)
        rows = await db.fetch_all("SELECT v FROM t ORDER BY v")
        assert [r["v"] for r in rows] == [2]
        assert not db._conn.in_transaction
    finally:
        release.set()
        await db.close()


@pytest.mark.parametrize("cancelled", [False, True], ids=["read_done", "read_cancelled"])
async def test_group_commit_statement_behind_a_read_on_the_thread_hops_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cancelled: bool
) -> None:
    """While a read outside any unit holds the connection on aiosqlite's thread, a unit's
    statement run inline would block the loop until the read ended: it goes there too, and
    the loop stays free meanwhile. So too when the read's caller was cancelled while it ran
    there: the read holds the connection until it ends all the same."""
    db = await Database.open(tmp_path / "behind.sqlite3")
    reading, release = threading.Event(), threading.Event()
    released: list[bool] = []

    def slow(value: int) -> int:  # an SQL function: the read holds the connection here
        reading.set()
        released.append(release.wait(5))  # by the loop, unless the loop is stuck
        return value

    await db._on_thread(lambda conn: conn.create_function("slow", 1, slow))
    try:
        async with db.transaction() as uow:
            await statements(uow).execute("CREATE TABLE t (v INTEGER)")
        threads = unit_threads(monkeypatch)
        read = asyncio.ensure_future(db.fetch_one("SELECT slow(7) AS v"))
        await asyncio.to_thread(reading.wait, 10)
        if cancelled:
            read.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read

        async def write() -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (1)")

        written = asyncio.ensure_future(write())
        # The loop turns while the write waits behind the read (inline, its BEGIN would
        # block the loop in the connection's mutex until the read gave up waiting).
        for _ in range(20):
            await asyncio.sleep(0)
        assert not written.done() and threads == []
        release.set()
        row = None if cancelled else await read
        await asyncio.wait_for(written, 10)
        assert released == [True]  # the loop was free to let the read go
        assert len(threads) == 1 and db.reading == 0
        assert cancelled or (row is not None and row["v"] == 7)
        async with db.transaction() as uow:  # no read in flight: inline again
            await statements(uow).execute("INSERT INTO t (v) VALUES (2)")
        assert threads[1] == threading.get_ident()
        async with db.transaction() as uow:
            rows = await statements(uow).fetch_all("SELECT v FROM t ORDER BY v")
        assert [r["v"] for r in rows] == [1, 2]
    finally:
        release.set()
        await db.close()


async def test_group_commit_begin_waits_for_another_process_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock: the unit's inline ``BEGIN IMMEDIATE`` is refused
    as busy and tried again after pauses, the loop turning meanwhile; once the lock is free
    the unit runs and commits, nothing lost."""
    path = tmp_path / "busy.sqlite3"
    db = await Database.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        async with db.transaction() as uow:
            await statements(uow).execute("CREATE TABLE t (v INTEGER)")
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (1)")

        written = asyncio.ensure_future(write())
        for _ in range(50):  # the loop is free while the write waits for the lock
            await asyncio.sleep(0)
        assert not written.done()
        # The lock is let go from the loop: a BEGIN blocking the loop would never see it.
        other.execute("COMMIT")
        await written
        rows = await db.fetch_all("SELECT v FROM t")
        assert [r["v"] for r in rows] == [1]
        assert not db._conn.in_transaction
    finally:
        other.close()
        await db.close()


async def test_group_commit_image_sweep_runs_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image sweep scans every finished job: its statements never run on the loop."""
    db = await Database.open(tmp_path / "images.sqlite3")
    try:
        threads = unit_threads(monkeypatch)
        assert await db.jobs.sweep_images(before=1e12) == 0
        assert threads and threading.get_ident() not in threads
    finally:
        await db.close()


async def test_group_commit_no_statement_runs_inline_while_the_connection_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit that comes while the database closes waits for the close and then fails
    with "closed": its statements never run on this thread while aiosqlite's frees the
    connection (that crashed the whole process, not the unit)."""
    db = await Database.open(tmp_path / "closing.sqlite3")
    closing, go = asyncio.Event(), asyncio.Event()
    real_close = db._conn.close

    async def slow_close() -> None:
        closing.set()
        await go.wait()
        await real_close()

    monkeypatch.setattr(db._conn, "close", slow_close)
    during: list[bool] = []
    real_begin = grouping.begin

    def begin(conn: sqlite3.Connection, group: grouping.Group) -> None:
        during.append(closing.is_set() and not go.is_set())
        real_begin(conn, group)

    monkeypatch.setattr(grouping, "begin", begin)
    closed = asyncio.create_task(db.close())
    await asyncio.wait_for(closing.wait(), 5)

    async def late_unit() -> None:
        async with db.transaction() as tx:
            await tx.execute("SELECT 1")

    late = asyncio.create_task(late_unit())
    for _ in range(5):  # the late unit's turns while the close is under way
        await asyncio.sleep(0)
    go.set()
    await asyncio.wait_for(closed, 5)
    with pytest.raises(ValueError, match="closed"):
        await asyncio.wait_for(late, 5)
    assert True not in during  # no BEGIN on the connection while it was closing


async def test_group_commit_a_failed_unit_is_undone_behind_a_read_on_the_thread(
    tmp_path: Path,
) -> None:
    """A unit fails while a read outside any unit holds the connection on aiosqlite's
    thread: its rollback waits behind the read there, the loop turning meanwhile (inline,
    it would block the loop in the connection's mutex until the read ended)."""
    db = await Database.open(tmp_path / "undo.sqlite3")
    reading, release = threading.Event(), threading.Event()
    released: list[bool] = []

    def slow(value: int) -> int:
        reading.set()
        released.append(release.wait(5))  # by the loop, unless the loop is stuck
        return value

    await db._on_thread(lambda conn: conn.create_function("slow", 1, slow))
    reads: list[asyncio.Future[Any]] = []
    try:
        async with db.transaction() as uow:
            await statements(uow).execute("CREATE TABLE t (v INTEGER)")

        async def failing() -> None:
            async with db.transaction() as uow:
                await statements(uow).execute("INSERT INTO t (v) VALUES (1)")
                reads.append(asyncio.ensure_future(db.fetch_one("SELECT slow(7) AS v")))
                await asyncio.to_thread(reading.wait, 10)
                raise LookupError("the unit fails while the read runs")

        failed = asyncio.ensure_future(failing())
        await asyncio.to_thread(reading.wait, 10)
        for _ in range(20):  # the loop turns while the rollback waits behind the read
            await asyncio.sleep(0)
        assert not failed.done()
        release.set()
        with pytest.raises(LookupError):
            await failed
        row = await reads[0]
        assert released == [True]  # the loop was free to let the read go
        assert row is not None and row["v"] == 7
        assert await db.fetch_all("SELECT v FROM t") == []  # the failed unit left nothing
        assert not db._conn.in_transaction
    finally:
        release.set()
        await db.close()
