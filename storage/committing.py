"""Units of work on the shared connection, committed in groups: ``Database.transaction()``.

Group commit. A commit with ``synchronous=FULL`` is an fsync, and a fresh
``BEGIN IMMEDIATE`` per unit of work is a round trip more; so units of work that
queue up behind each other share one SQLite transaction: the first one of a
group opens it (``BEGIN IMMEDIATE``), each unit runs inside a ``SAVEPOINT`` of
its own (a unit that raises rolls back to its savepoint only, and the others'
work stays), and one ``COMMIT`` ends the group once every unit queued before
its committer has run. A unit's ``async with`` ends (its result goes back to
its caller, its after-commit callbacks run) only after that ``COMMIT``; a
failed ``COMMIT`` raises in every unit of the group. Each unit still sees the
units before it, as if they had committed one after the other.

Statements go to aiosqlite's thread one hop each (execute, fetch and close
together), and ``Tx.batch`` sends several in one hop; the group's ``BEGIN`` and
each unit's ``SAVEPOINT`` ride along with the unit's first statement. The
statements a unit's coroutines issue in the same turn of the loop (its reads
under ``asyncio.gather``) share one hop too, run in the order issued, each with
its own result or error: a hop costs the loop and the thread more than a read.

Because the connection is shared, a transaction left open poisons every later
write. ``COMMIT`` and ``ROLLBACK`` therefore run to their end even when the task
awaiting them is cancelled (a stop, a timeout): the statement is finished
under the lock, a unit cancelled in its body is rolled back to its savepoint
(the whole transaction when it was the group's only unit), and only then is
the cancellation passed on. A unit cancelled while its group commits waits for
the commit, then the cancellation goes on. A transaction found open on entry,
not ours, is rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiosqlite

from storage import grouping
from storage.engine import Statements
from storage.grouping import Params, Step

if TYPE_CHECKING:
    from storage.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
#: A group's committer lets units still queueing for the lock in first, up to these bounds.
GROUP_UNITS = 256
GROUP_SECONDS = 0.05


class GroupCommit:
    """The write lock, the open group and the hops to aiosqlite's thread (``Database``)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        #: The group of units of work sharing the open SQLite transaction (``transaction()``).
        self._group: grouping.Group | None = None
        self._entering = 0  # units of work waiting for the lock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One unit of work, in the open group; its ``async with`` ends after the group's
        ``COMMIT``, then its ``after_commit`` callbacks run."""
        self._entering += 1
        try:
            await self._lock.acquire()
        finally:
            self._entering -= 1
        try:
            group = self._group
            if group is None:
                group = self._group = self._open_group()
            group.entered += 1
            unit = grouping.Unit(group)
            tx = Tx(self._conn, cast("Database", self), unit)
            try:
                yield tx
            except BaseException:
                unit.closed = True
                alone = group.succeeded == 0
                if not await self._finish(lambda: self._on_thread(grouping.undo, unit, alone)):
                    self._fail(group, group.lost)
                raise
            unit.closed = True
            group.succeeded += 1
            if group.committer is None:
                if self._entering == 0 and group.entered == 1:
                    # Alone, and nobody queueing to join: commit now, still under the lock.
                    await self._finish(lambda: self._close(group))
                else:
                    group.committer = asyncio.create_task(
                        self._commit_later(group), name="hailuo-commit"
                    )
        finally:
            self._lock.release()
        await self._committed(group)
        for callback in tx.committed():
            try:
                await callback()
            except Exception:  # the change is committed; a follow-up never undoes it
                log.exception("after-commit callback failed")

    def _open_group(self) -> grouping.Group:
        """A new group. Its first unit that succeeds commits it at once if it is alone and
        nobody queues for the lock; else it starts the group's committer, queued behind
        every unit waiting now, so those join this group and the ones coming later the next."""
        loop = asyncio.get_running_loop()
        group = grouping.Group(loop.create_future(), opened=loop.time())
        # Retrieved here, so a failure nobody awaits (every unit failed) is not reported twice.
        group.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        return group

    async def _commit_later(self, group: grouping.Group) -> None:
        """Commit ``group`` once it is this task's turn; while units are still queueing for
        the lock, let them in first (up to ``GROUP_UNITS`` or ``GROUP_SECONDS``): they
        would wait for a commit anyway, and one fsync is the price of many."""
        cancelled = await self._acquire()
        try:
            loop = asyncio.get_running_loop()
            while (
                self._entering
                and self._group is group
                and group.entered < GROUP_UNITS
                and loop.time() - group.opened < GROUP_SECONDS
            ):
                self._lock.release()
                cancelled = await self._acquire() or cancelled
            await self._finish(lambda: self._close(group))
        except asyncio.CancelledError:
            cancelled = True
        finally:
            self._lock.release()
        if cancelled:
            raise asyncio.CancelledError

    async def _acquire(self) -> bool:
        """Take the lock even through a cancellation (the group must end); whether one came."""
        cancelled = False
        while True:
            try:
                await self._lock.acquire()
                return cancelled
            except asyncio.CancelledError:
                cancelled = True

    async def _close(self, group: grouping.Group) -> None:
        """Commit ``group`` (under the lock); every unit in it learns the outcome."""
        if self._group is group:
            self._group = None
        if group.done.done():
            return
        try:
            await self._on_thread(grouping.commit, group)
        except Exception as exc:
            self._fail(group, exc)
        else:
            group.done.set_result(None)

    def _fail(self, group: grouping.Group, exc: BaseException | None) -> None:
        if self._group is group:
            self._group = None  # the next unit opens a new group
        if not group.done.done():
            group.done.set_exception(exc or grouping.TransactionLost("the transaction was lost"))

    async def _flush(self) -> None:
        """Under the lock: commit the open group, or roll back a stray transaction."""
        if self._group is not None:
            await self._close(self._group)
        else:
            await self._on_thread(grouping.rollback_stray)

    async def _committed(self, group: grouping.Group) -> None:
        """Wait for the group's ``COMMIT``: even when cancelled meanwhile (then the
        cancellation goes on once it is done); a failed ``COMMIT`` raises here."""
        cancelled = False
        while not group.done.done():
            try:
                await asyncio.shield(group.done)
            except asyncio.CancelledError:
                cancelled = True  # held back until the group is done, then passed on
            except Exception:
                break
        if cancelled:
            raise asyncio.CancelledError
        group.done.result()

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sqlite3 connection, *args)`` on aiosqlite's thread: one hop."""
        conn = self._conn
        # aiosqlite's own way to run a function on its thread (every method of it uses it).
        run = cast(Callable[[Callable[[], T]], Awaitable[T]], conn._execute)
        return await run(lambda: fn(conn._conn, *args))

    async def _finish(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run ``step`` to its end even if the caller is cancelled meanwhile.

        The caller holds the write lock. A cancellation while ``step`` runs is held
        back until it finished, then goes on: a savepoint's rollback, a ``COMMIT``
        or a ``ROLLBACK`` is never cut in half.
        """
        task = asyncio.ensure_future(step())
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            if not task.cancelled():
                task.exception()  # retrieved: the cancellation is what goes on
            raise asyncio.CancelledError
        return task.result()

    async def fetch_one(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        return await self._on_thread(grouping.fetch_one, sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        return await self._on_thread(grouping.fetch_all, sql, params)

    async def batch(self, steps: Sequence[Step]) -> list[list[aiosqlite.Row]]:
        """Several reads in one hop, outside any unit of work (see ``Tx.batch``)."""
        return await self._on_thread(grouping.batch, steps)


def _deliver(
    queued: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]],
    hop: asyncio.Future[list[tuple[bool, Any]]],
) -> None:
    """Each queued statement's result or error, from its hop (``Tx._send``)."""
    if hop.cancelled() or hop.exception() is not None:
        error = None if hop.cancelled() else hop.exception()
        for _, waiting in queued:
            if not waiting.done():
                waiting.cancel() if error is None else waiting.set_exception(error)
        return
    for (_, waiting), (ok, value) in zip(queued, hop.result(), strict=True):
        if waiting.done():  # its caller was cancelled meanwhile
            continue
        if ok:
            waiting.set_result(value)
        else:
            waiting.set_exception(value)


class Tx(Statements):
    """The statements of one unit of work (one hop to aiosqlite's thread each)."""

    db: Database

    def __init__(
        self, conn: aiosqlite.Connection, db: Database, unit: grouping.Unit | None = None
    ) -> None:
        super().__init__(db)
        self._conn = conn
        self._unit = unit
        #: Statements issued in this turn of the loop, sent together at its end (``_send``).
        self._queued: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        unit = self._unit
        if unit is None:
            return await self.db._on_thread(fn, *args)
        if unit.closed:
            raise RuntimeError("a statement after its unit of work ended")
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[T] = loop.create_future()
        self._queued.append((lambda c: fn(c, *args), waiting))
        if len(self._queued) == 1:
            loop.call_soon(self._send, unit)
        return await waiting

    def _send(self, unit: grouping.Unit) -> None:
        """One hop for the statements queued in this turn, in the order they were issued:
        put on aiosqlite's queue now (as its own ``_execute`` does, without a task)."""
        queued, self._queued = self._queued, []
        conn = self._conn
        hop: asyncio.Future[list[tuple[bool, Any]]] = asyncio.get_running_loop().create_future()
        hop.add_done_callback(lambda done: _deliver(queued, done))
        if not conn._running or not conn._connection:
            hop.set_exception(ValueError("Connection closed"))
            return
        works = [work for work, _ in queued]
        raw = conn._connection
        conn._tx.put_nowait((hop, lambda: grouping.each_in_unit(raw, unit, works)))

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        return await self._run(grouping.rowcount, sql, params)

    async def insert(self, sql: str, params: Params = ()) -> int:
        return await self._run(grouping.lastrowid, sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        return await self._run(grouping.fetch_one, sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        return await self._run(grouping.fetch_all, sql, params)

    async def batch(self, steps: Sequence[Step]) -> list[list[aiosqlite.Row]]:
        """Several statements in one hop, in order; each one's rows (``RETURNING``).

        A step's parameters may be a function of the earlier steps' rows, returning
        ``None`` to skip it (a guarded write whose guard found nothing)."""
        return await self._run(grouping.batch, steps)
