"""A unit of work's statements run inline, on the event loop (``-k group_commit``).

The writer holds the connection for the whole unit, so a statement inside a unit needs
no trip to aiosqlite's thread: gathered statements run in the order issued, each with
its own result or error; a failing one changes nothing for the others, and one issued
after its unit ended is refused as before.
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


async def test_group_commit_gathered_statements_run_inline_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.open(tmp_path / "inline.sqlite3")
    threads: list[int] = []  # the thread each of the unit's statements ran on
    real = grouping.in_unit

    def counted(conn: sqlite3.Connection, unit: grouping.Unit, work: Callable[..., Any]) -> Any:
        threads.append(threading.get_ident())
        return real(conn, unit, work)

    monkeypatch.setattr(grouping, "in_unit", counted)
    try:
        async with db.transaction() as uow:
            tx = statements(uow)
            await tx.execute("CREATE TABLE t (v INTEGER)")
            threads.clear()
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
