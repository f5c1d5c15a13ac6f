"""A unit of work's statements issued at once share one hop (``-k group_commit``).

Reads gathered in one unit (``JobDesk._admit``'s) go to aiosqlite's thread together,
in the order issued, each with its own result or error; a failing one changes nothing
for the others, and one issued after its unit ended is refused as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storage import grouping
from storage.db import Database, statements


async def test_group_commit_gathered_statements_share_one_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.open(tmp_path / "hops.sqlite3")
    hops: list[int] = []  # statements per hop of the unit's
    real = grouping.each_in_unit

    def counted(conn: sqlite3.Connection, unit: grouping.Unit, works: Any) -> Any:
        hops.append(len(works))
        return real(conn, unit, works)

    monkeypatch.setattr(grouping, "each_in_unit", counted)
    try:
        async with db.transaction() as uow:
            tx = statements(uow)
            await tx.execute("CREATE TABLE t (v INTEGER)")
            hops.clear()
            first, failed, wrote, after = await asyncio.gather(
                tx.fetch_one("SELECT 1 AS v"),
                tx.fetch_one("SELECT * FROM missing"),
                tx.execute("INSERT INTO t (v) VALUES (7)"),
                tx.fetch_all("SELECT v FROM t"),
                return_exceptions=True,
            )
            assert hops == [4]  # four statements, one hop
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
