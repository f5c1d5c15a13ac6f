"""Group commit for the one connection: the SQLite side of ``Database.transaction()``.

Why: with ``synchronous=FULL`` every ``COMMIT`` is an fsync, and every statement a
round trip to aiosqlite's thread (about 80 µs here). Units of work queued behind
each other therefore share one SQLite transaction (a *group*), each inside a
``SAVEPOINT`` of its own, and one ``COMMIT`` ends the group.

Everything here that touches the ``sqlite3`` connection runs on aiosqlite's thread
(the functions take the raw connection as their first argument); the ``Group`` and
``Unit`` fields marked *thread* are only read and written there, in the order the
hops were queued, so they need no lock. ``storage.db`` does the asyncio side.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.engine import Params as Params
from storage.engine import Step as Step  # re-exported: a batch's statements

log = logging.getLogger(__name__)

#: Every unit's savepoint has this name; only the innermost one is ever open.
SAVEPOINT = "hailuo_unit"


class TransactionLost(sqlite3.OperationalError):
    """SQLite ended the group's transaction under it (it rolls back on some errors), so
    the work of every unit in the group is gone: each of them raises this."""


@dataclass(eq=False)
class Group:
    """Units of work sharing one SQLite transaction and one ``COMMIT``."""

    done: asyncio.Future[None]  # resolved once the group committed, or failed
    opened: float = 0.0  # loop time
    committer: asyncio.Task[None] | None = None
    entered: int = 0  # units that took the lock in this group (loop side)
    succeeded: int = 0  # units whose body ended without raising (loop side)
    begun: bool = False  # thread: our ``BEGIN IMMEDIATE`` ran and is still open
    unit: Unit | None = None  # thread: whose savepoint is open
    lost: TransactionLost | None = None  # thread: SQLite rolled the transaction back


@dataclass(eq=False)
class Unit:
    """One caller's unit of work inside a group."""

    group: Group
    closed: bool = False  # its ``async with`` ended: no statement may follow


def enter(conn: sqlite3.Connection, unit: Unit) -> None:
    """Before a unit's statement: begin the group's transaction and the unit's savepoint
    if they are not open yet (so they ride along with the unit's first statement)."""
    group = unit.group
    if group.lost is not None:
        raise group.lost
    if not group.begun:
        if conn.in_transaction:
            log.warning("rolling back a transaction left open on the shared connection")
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        group.begun = True
    if group.unit is not unit:
        if group.unit is not None:
            conn.execute(f"RELEASE {SAVEPOINT}")  # the unit before: its work joins the group's
        group.unit = None
        conn.execute(f"SAVEPOINT {SAVEPOINT}")
        group.unit = unit


def check(conn: sqlite3.Connection, group: Group) -> None:
    """After a statement, failed or not: did SQLite roll the whole transaction back?"""
    if group.begun and not conn.in_transaction:
        group.begun = False
        group.unit = None
        group.lost = TransactionLost("the transaction was rolled back by SQLite")


def in_unit(conn: sqlite3.Connection, unit: Unit, work: Callable[[sqlite3.Connection], Any]) -> Any:
    """Run ``work`` (statements) inside ``unit``'s savepoint, in one hop."""
    enter(conn, unit)
    try:
        return work(conn)
    finally:
        check(conn, unit.group)


def each_in_unit(
    conn: sqlite3.Connection, unit: Unit, works: Sequence[Callable[[sqlite3.Connection], Any]]
) -> list[tuple[bool, Any]]:
    """The statements a unit's coroutines issued at once, in one hop, in the order issued:
    each run as its own ``in_unit`` would, each one's result (True) or error (False). One
    issued before its unit ended but reaching here after is not run (nobody awaits it)."""
    outcomes: list[tuple[bool, Any]] = []
    for work in works:
        if unit.closed:
            outcomes.append((False, RuntimeError("a statement after its unit of work ended")))
            continue
        try:
            outcomes.append((True, in_unit(conn, unit, work)))
        except Exception as error:
            outcomes.append((False, error))
    return outcomes


def undo(conn: sqlite3.Connection, unit: Unit, alone: bool) -> bool:
    """Roll ``unit`` back to its savepoint (the whole transaction when ``alone``: no unit of
    the group has succeeded, so there is nothing to keep). Whether the group is intact."""
    group = unit.group
    if group.unit is unit:
        group.unit = None
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {SAVEPOINT}")
            conn.execute(f"RELEASE {SAVEPOINT}")
        else:
            check(conn, group)
    if alone and group.begun and group.lost is None:
        group.begun = False
        group.unit = None
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    return group.lost is None


def commit(conn: sqlite3.Connection, group: Group) -> None:
    """End the group: ``COMMIT`` (its savepoints with it), or roll back and raise."""
    if group.lost is not None:
        raise group.lost
    if not group.begun:
        return  # no unit ran a statement
    group.begun = False
    group.unit = None
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves it open
            conn.execute("ROLLBACK")
        raise


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
