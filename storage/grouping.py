"""Group commit for the one connection: the SQLite side of ``Database.transaction()``.

Why: with ``synchronous=FULL`` every ``COMMIT`` is an fsync. Units of work queued
behind each other therefore share one SQLite transaction (a *group*), each after
the first inside a ``SAVEPOINT`` of its own, and one ``COMMIT`` ends the group.

The functions here take the raw ``sqlite3`` connection as their first argument. A
unit's statements, its ``BEGIN`` and its rollback run inline on the event loop's
thread (on aiosqlite's for a sweep, or behind a read running there), the ``COMMIT`` on
aiosqlite's; always under the write lock, one after the other, so the ``Group`` and
``Unit`` fields need no lock of their own.
``storage.committing`` does the asyncio side.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from storage.engine import Params as Params
from storage.engine import Step as Step  # re-exported: a batch's statements

log = logging.getLogger(__name__)

T = TypeVar("T")
#: How long a statement waits for another process's lock (as ``busy_timeout`` would).
BUSY_SECONDS = 5.0
#: Every unit's savepoint has this name; only the innermost one is ever open.
SAVEPOINT = "hailuo_unit"


class TransactionLost(sqlite3.OperationalError):
    """SQLite ended the group's transaction under it (it rolls back on some errors), so
    the work of every unit in the group is gone: each of them raises this."""


@dataclass(eq=False)
class Group:
    """Units of work sharing one SQLite transaction and one ``COMMIT``."""

    done: asyncio.Future[None]  # resolved once the group committed, or failed
    #: The units waiting for ``done``, each on a future of its own (``settle``).
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    opened: float = 0.0  # loop time
    committer: asyncio.Task[None] | None = None
    entered: int = 0  # units that took the lock in this group (loop side)
    succeeded: int = 0  # units whose body ended without raising (loop side)
    begun: bool = False  # our ``BEGIN IMMEDIATE`` ran and is still open
    unit: Unit | None = None  # whose statements ran last (inside its savepoint, if guarded)
    lost: TransactionLost | None = None  # SQLite rolled the transaction back

    def settle(self, exc: BaseException | None = None) -> None:
        """The group's outcome (committed, or ``exc``), and every unit waiting for it woken
        in this turn of the loop."""
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()


@dataclass(eq=False)
class Unit:
    """One caller's unit of work inside a group."""

    group: Group
    #: It runs inside a savepoint of its own: the group holds earlier units' work to keep.
    guarded: bool = False
    closed: bool = False  # its ``async with`` ended: no statement may follow


def busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (worth trying again)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def pauses(seconds: float = BUSY_SECONDS) -> Iterator[float]:
    """The pauses before each new try of a statement refused as busy, doubling from 1 ms
    to 50 ms, for ``seconds`` in all (as ``busy_timeout`` would wait)."""
    deadline = time.monotonic() + seconds
    pause = 0.001
    while time.monotonic() + pause <= deadline:
        yield pause
        pause = min(pause * 2, 0.05)


def patiently(fn: Callable[[], T]) -> T:
    """``fn()`` (one statement) on aiosqlite's thread, again while another process holds a lock
    (the connection has no busy handler, so that a unit's inline ``BEGIN`` never blocks
    the loop): as ``busy_timeout`` would, on this thread only. A statement refused as
    busy did nothing, so running it again is safe (a busy ``COMMIT`` leaves the
    transaction open for exactly that)."""
    waits = pauses()
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            pause = next(waits, None)
            if not busy(exc) or pause is None:
                raise
        time.sleep(pause)


def outside(conn: sqlite3.Connection, read: Callable[..., T], *args: Any) -> T:
    """A read outside any unit of work, on aiosqlite's thread (``patiently``)."""
    return patiently(lambda: read(conn, *args))


def begin(conn: sqlite3.Connection, group: Group) -> None:
    """The group's ``BEGIN IMMEDIATE`` (a stray transaction left open is rolled back first)."""
    if conn.in_transaction:
        log.warning("rolling back a transaction left open on the shared connection")
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    group.begun = True


def enter(conn: sqlite3.Connection, unit: Unit) -> None:
    """Before a unit's statement: its savepoint, if it needs one and it is not open yet.

    Only a unit after one that succeeded needs a savepoint: one that fails with no
    earlier work in the group to keep rolls the whole transaction back (``undo``)."""
    group = unit.group
    if group.lost is not None:
        raise group.lost
    if not group.begun:
        begin(conn, group)
    if group.unit is not unit:
        if group.unit is not None and group.unit.guarded:
            conn.execute(f"RELEASE {SAVEPOINT}")  # the unit before: its work joins the group's
        group.unit = None
        if unit.guarded:
            conn.execute(f"SAVEPOINT {SAVEPOINT}")
        group.unit = unit


def check(conn: sqlite3.Connection, group: Group) -> None:
    """After a statement, failed or not: did SQLite roll the whole transaction back?"""
    if group.begun and not conn.in_transaction:
        group.begun = False
        group.unit = None
        group.lost = TransactionLost("the transaction was rolled back by SQLite")


def in_unit(conn: sqlite3.Connection, unit: Unit, work: Callable[..., T], *args: Any) -> T:
    """Run ``work(conn, *args)`` (statements) as part of ``unit`` (inside its savepoint if
    it has one)."""
    enter(conn, unit)
    try:
        return work(conn, *args)
    finally:
        check(conn, unit.group)


def undo(conn: sqlite3.Connection, unit: Unit, alone: bool) -> None:
    """Roll ``unit`` back to its savepoint (the whole transaction when ``alone``: no unit of
    the group has succeeded, so there is nothing to keep). A transaction SQLite rolled
    back meanwhile is left in ``group.lost``."""
    group = unit.group
    if group.unit is unit:
        group.unit = None
        if not conn.in_transaction:
            check(conn, group)
        elif unit.guarded:
            conn.execute(f"ROLLBACK TO {SAVEPOINT}")
            conn.execute(f"RELEASE {SAVEPOINT}")
    if alone and group.begun and group.lost is None:
        group.begun = False
        group.unit = None
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def commit(conn: sqlite3.Connection, group: Group) -> None:
    """End the group: ``COMMIT`` (its savepoints with it), or roll back and raise."""
    if group.lost is not None:
        raise group.lost
    if not group.begun:
        return  # no unit ran a statement
    try:
        patiently(lambda: conn.execute("COMMIT"))
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves it open
            conn.execute("ROLLBACK")
        raise
    finally:
        group.begun = False
        group.unit = None


def rollback_stray(conn: sqlite3.Connection) -> None:
    """Roll back a transaction left open outside any group (a failed step, an older bug)."""
    if conn.in_transaction:
        log.warning("rolling back a transaction left open on the shared connection")
        conn.execute("ROLLBACK")


# -- statements, each run to its end on the thread (execute, fetch and close in one hop) ----


def rowcount(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    cursor = conn.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def lastrowid(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    cursor = conn.execute(sql, params)
    try:
        assert cursor.lastrowid is not None
        return cursor.lastrowid
    finally:
        cursor.close()


def fetch_one(conn: sqlite3.Connection, sql: str, params: Params) -> sqlite3.Row | None:
    cursor = conn.execute(sql, params)
    try:
        row: sqlite3.Row | None = cursor.fetchone()
        return row
    finally:
        cursor.close()


def fetch_all(conn: sqlite3.Connection, sql: str, params: Params) -> list[sqlite3.Row]:
    cursor = conn.execute(sql, params)
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def batch(conn: sqlite3.Connection, steps: Sequence[Step]) -> list[list[sqlite3.Row]]:
    """Several statements in one hop; each step's rows (empty for a skipped step)."""
    results: list[list[sqlite3.Row]] = []
    for sql, params in steps:
        bound = params(results) if callable(params) else params
        results.append([] if bound is None else fetch_all(conn, sql, bound))
    return results
