"""Units of work on the shared connection, committed in groups: ``Database.transaction()``.

Group commit. A commit with ``synchronous=FULL`` is an fsync, and a fresh
``BEGIN IMMEDIATE`` per unit of work is a round trip more; so units of work that queue up
behind each other share one SQLite transaction: the first one of a group opens it, each unit
runs inside a ``SAVEPOINT`` of its own (a unit that raises rolls back to its savepoint only,
and the others' work stays), and one ``COMMIT`` ends the group once every unit queued before
its committer has run. A unit's ``async with`` ends (its result goes back to its caller, its
after-commit callbacks run) only after that ``COMMIT``; a failed ``COMMIT`` raises in every
unit of the group. Each unit still sees the units before it, as if they had committed one
after the other.

A unit's statements run inline, on the event loop's thread, straight on the ``sqlite3``
connection: a statement of a unit of work is a point read or write by an index
(``-k query_plan`` proves each one), microseconds of C that release the GIL, where a hop to
aiosqlite's thread costs the loop several turns and a wake-up. Only what may wait runs on
aiosqlite's thread: the ``COMMIT`` (an fsync), the reads outside any unit of work
(``fetch_one``, ``fetch_all``, ``batch`` on the database), which may scan, and the
statements of a unit that may scan or write many rows (a sweep, a batch of polls or leases:
``bulk()``). While such a read runs there (even one whose caller was cancelled) it holds the
connection, so a unit's ``BEGIN`` and statements then queue behind it on that thread instead
of waiting for the connection on the loop (``reading``). A unit never waits on SQLite's busy
handler on the loop: its group's ``BEGIN IMMEDIATE`` is tried without one and, while another
process holds the write lock, tried again after short sleeps (``begin``), as the busy
handler would.

Because the connection is shared, a transaction left open poisons every later write.
``COMMIT`` and ``ROLLBACK`` therefore run to their end even when the task awaiting them is
cancelled (a stop, a timeout): the statement is finished under the lock, a unit cancelled in
its body is rolled back to its savepoint (the whole transaction when it was the group's only
unit; inline, so nothing can cut it in half), and only then is the cancellation passed on. A
unit cancelled while its group commits waits for the commit, then the cancellation goes on.
A transaction found open on entry, not ours, is rolled back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiosqlite

from storage import grouping
from storage.engine import Statements
from storage.grouping import Params, Step
from storage.to_the_end import acquire, finish

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
        #: Reads outside any unit of work sent to aiosqlite's thread and not back yet.
        self.reading = 0

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """One unit of work, in the open group; its ``async with`` ends after the group's
        ``COMMIT``, then its ``after_commit`` callbacks run."""
        return _UnitOfWork(self, inline=True)

    def bulk(self) -> AbstractAsyncContextManager[Tx]:
        """A unit of work whose statements may scan or write many rows (a sweep, a batch of
        polls or leases): on aiosqlite's thread, one hop each; the loop goes on meanwhile."""
        return _UnitOfWork(self, inline=False)

    async def _undo(self, unit: grouping.Unit, alone: bool) -> None:
        """Roll a failed unit back (``grouping.undo``; a lost group says so in ``lost``):
        inline, unless a read holds the connection on aiosqlite's thread; then behind it
        there, never cut in half."""
        if not self.reading:
            grouping.undo(self._raw, unit, alone)
        else:
            await finish(lambda: self._on_thread(grouping.undo, unit, alone))

    @property
    def _raw(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself, for the statements run inline."""
        raw: sqlite3.Connection | None = self._conn._connection
        if raw is None:
            raise ValueError("Connection closed")
        return raw

    async def _begin(self, group: grouping.Group) -> None:
        """``BEGIN IMMEDIATE`` for ``group``, inline: while another process holds the write
        lock, again after a short sleep, up to ``BUSY_SECONDS`` (the loop never blocks)."""
        waits = grouping.pauses()
        while True:
            try:
                if not self.reading:
                    grouping.begin(self._raw, group)
                else:  # behind the read there; to its end even if cancelled (``to_the_end``)
                    await finish(lambda: self._on_thread(grouping.begin, group))
                return
            except sqlite3.OperationalError as exc:
                pause = next(waits, None)
                if not grouping.busy(exc) or pause is None:
                    raise
            await asyncio.sleep(pause)

    def _open_group(self) -> grouping.Group:
        """A new group. Its first unit that succeeds starts the group's committer, queued
        behind every task ready now and every unit waiting for the lock, so those join
        this group and the ones coming later the next."""
        loop = asyncio.get_running_loop()
        group = grouping.Group(loop.create_future(), opened=loop.time())
        # Retrieved here, so a failure nobody awaits (every unit failed) is not reported twice.
        group.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        return group

    async def _commit_later(self, group: grouping.Group) -> None:
        """Commit ``group`` once it is this task's turn; while units are still queueing for
        the lock, let them in first (up to ``GROUP_UNITS`` or ``GROUP_SECONDS``): they
        would wait for a commit anyway, and one fsync is the price of many.

        The ``COMMIT`` is handed to aiosqlite's thread with the lock (``_hand_over``): the
        loop hears its outcome once, settles the group and frees the lock in that same
        turn, so nothing can cut it in half and no task stands between the two."""
        cancelled = await acquire(self._lock)
        handed = False
        try:
            loop = asyncio.get_running_loop()
            while (
                self._entering
                and self._group is group
                and group.entered < GROUP_UNITS
                and loop.time() - group.opened < GROUP_SECONDS
            ):
                self._lock.release()
                cancelled = await acquire(self._lock) or cancelled
            handed = self._hand_over(group)
        except asyncio.CancelledError:
            cancelled = True
        finally:
            if not handed:
                self._lock.release()
        if cancelled:
            raise asyncio.CancelledError

    def _hand_over(self, group: grouping.Group) -> bool:
        """Under the lock: send ``group``'s ``COMMIT`` to aiosqlite's thread, which keeps the
        lock until the loop hears how it ended (``_commit_ended`` settles the group, then
        frees it). False when there is nothing to send (the lock is still the caller's)."""
        if not self._detach(group):
            return False
        conn = self._conn
        if not conn._running or conn._connection is None:  # as aiosqlite's own check
            self._fail(group, ValueError("Connection closed"))
            return False
        loop = asyncio.get_running_loop()
        raw = conn._conn

        def commit() -> None:  # on aiosqlite's thread; its outcome goes back to the loop
            try:
                grouping.commit(raw, group)
            except BaseException as exc:  # whatever it was, the lock must come back
                loop.call_soon_threadsafe(self._commit_ended, group, exc)
            else:
                loop.call_soon_threadsafe(self._commit_ended, group, None)

        conn._tx.put_nowait((None, commit))  # aiosqlite's queue: behind what is sent already
        return True

    def _commit_ended(self, group: grouping.Group, exc: BaseException | None) -> None:
        """On the loop, once a handed-over ``COMMIT`` ended: every unit of the group learns
        the outcome, and the lock is free again."""
        try:
            if exc is not None:
                self._fail(group, exc)
            else:
                group.settle()
        finally:
            self._lock.release()

    def _fail(self, group: grouping.Group, exc: BaseException | None) -> None:
        self._detach(group)
        group.settle(exc or grouping.TransactionLost("the transaction was lost"))

    def _detach(self, group: grouping.Group) -> bool:
        """``group`` is no longer the open one (the next unit opens a new group); whether it
        still waits for its outcome."""
        if self._group is group:
            self._group = None
        return not group.done.done()

    async def _flush(self) -> None:
        """Under the lock: commit the open group (every unit in it learns the outcome), or
        roll back a stray transaction."""
        group = self._group
        if group is None:
            await self._on_thread(grouping.rollback_stray)
        elif self._detach(group):
            try:
                await self._on_thread(grouping.commit, group)
            except Exception as exc:
                self._fail(group, exc)
            else:
                group.settle()

    async def _committed(self, group: grouping.Group) -> None:
        """Wait for the group's ``COMMIT``: even when cancelled meanwhile (then the
        cancellation goes on once it is done); a failed ``COMMIT`` raises here."""
        cancelled = False
        while not group.done.done():
            # A waiter of its own, woken by ``Group.settle``: a cancellation ends only this wait.
            waiter = asyncio.get_running_loop().create_future()
            group.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                cancelled = True  # held back until the group is done, then passed on
        if cancelled:
            raise asyncio.CancelledError
        group.done.result()

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sqlite3 connection, *args)`` on aiosqlite's thread: one hop."""
        return await self._send(fn, *args)

    def _send(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(sqlite3 connection, *args)`` on aiosqlite's thread as its own methods do
        (``Connection._execute``); the future is resolved there even if nobody awaits it."""
        conn = self._conn
        if not conn._running or conn._connection is None:
            raise ValueError("Connection closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        conn._tx.put_nowait((future, lambda: fn(conn._conn, *args)))
        return future

    # Reads outside any unit of work: on aiosqlite's thread (they may scan), and tried
    # again there while another process holds a lock (the connection has no busy handler).

    async def fetch_one(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        return await self._outside(grouping.fetch_one, sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        return await self._outside(grouping.fetch_all, sql, params)

    async def batch(self, steps: Sequence[Step]) -> list[list[aiosqlite.Row]]:
        """Several reads in one hop, outside any unit of work (see ``Tx.batch``)."""
        return await self._outside(grouping.batch, steps)

    async def _outside(self, read: Callable[..., T], *args: Any) -> T:
        """A read on aiosqlite's thread. While it runs there it holds the connection: a unit's
        statement run inline would block the loop until it ends, so units hop too
        (``Tx._run``) until no read is left there, even one whose caller was cancelled."""
        ran = self._send(grouping.outside, read, *args)
        self.reading += 1
        ran.add_done_callback(self._read_ended)
        return await asyncio.shield(ran)

    def _read_ended(self, ran: asyncio.Future[Any]) -> None:
        self.reading -= 1
        if not ran.cancelled():
            ran.exception()  # retrieved: a cancelled caller no longer awaits it


class _UnitOfWork(AbstractAsyncContextManager["Tx"]):
    """One ``async with`` of ``transaction()``: the write lock, the unit's place in the open
    group, its rollback if its body raises, then the group's ``COMMIT`` and its after-commit
    callbacks. A class, not a generator: every write of every job enters one."""

    __slots__ = ("_db", "_group", "_inline", "_tx", "_unit")

    def __init__(self, db: GroupCommit, inline: bool) -> None:
        self._db = db
        self._inline = inline

    async def __aenter__(self) -> Tx:
        db = self._db
        db._entering += 1
        try:
            await db._lock.acquire()
        finally:
            db._entering -= 1
        try:
            group = db._group
            if group is None:
                group = db._group = db._open_group()
            if not group.begun and group.lost is None:
                await db._begin(group)
            group.entered += 1
            self._group = group
            self._unit = grouping.Unit(group, guarded=group.succeeded > 0)
            self._tx = Tx(cast("Database", db), self._unit, self._inline)
        except BaseException:
            db._lock.release()
            raise
        return self._tx

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        db, group, unit = self._db, self._group, self._unit
        unit.closed = True
        try:
            if kind is not None:
                try:
                    await db._undo(unit, alone=group.succeeded == 0)
                finally:  # a cancellation during a rollback on the thread: after it, here
                    if group.lost is not None:
                        db._fail(group, group.lost)
                return  # the body's exception goes on
            group.succeeded += 1
            if group.committer is None:
                # Queued behind every task ready now: the units they run join this group.
                group.committer = asyncio.create_task(db._commit_later(group), name="hailuo-commit")
        finally:
            db._lock.release()
        await db._committed(group)
        for callback in self._tx.committed():
            try:
                await callback()
            except Exception:  # the change is committed; a follow-up never undoes it
                log.exception("after-commit callback failed")


class Tx(Statements):
    """The statements of one unit of work, run inline (``GroupCommit``)."""

    db: Database

    def __init__(self, db: Database, unit: grouping.Unit, inline: bool = True) -> None:
        super().__init__(db)
        self._unit = unit
        #: Inline, unless it may scan or write many rows (``bulk``); a statement issued while
        #: a read holds the connection on aiosqlite's thread goes there too, behind it.
        self._inline = inline

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        unit = self._unit
        if unit.closed:
            raise RuntimeError("a statement after its unit of work ended")
        if self._inline and not self.db.reading:
            return grouping.in_unit(self.db._raw, unit, fn, *args)
        # Sent there, it runs even if this task is cancelled: the unit's rollback must wait
        # for it, or its write would land in a later transaction and be committed with it.
        db = self.db
        return await finish(lambda: db._on_thread(grouping.in_unit, unit, fn, *args))

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
        """Several statements in order; each one's rows (``RETURNING``).

        A step's parameters may be a function of the earlier steps' rows, returning
        ``None`` to skip it (a guarded write whose guard found nothing)."""
        return await self._run(grouping.batch, steps)
