"""Moving a bot's SQLite database into PostgreSQL, and an online copy of a SQLite file.

``move_to_postgres`` (``python -m hailuo migrate --to postgresql://…``) copies every
table of a SQLite file, as one consistent snapshot, into an empty PostgreSQL
database in one transaction, then checks what arrived: every table's row count,
and every balance (each member's sum of ledger entries in each period, each
server's) read back from both sides. The bot is stopped while it runs; the
source is only read. A target that already holds rows is refused.

``backup_sqlite`` (``python -m hailuo backup PATH``) copies a SQLite file with
SQLite's backup API while the bot keeps running: one step over the whole file,
so the copy is one consistent moment (WAL lets the bot write meanwhile), then
``PRAGMA integrity_check`` on the copy.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from storage.migrating import migration_scripts
from storage.postgres import PostgresDatabase

#: Tables whose rows others point to go first (foreign keys), and the moderation versions
#: before the rows whose triggers move them (migration 012).
FIRST = ("jobs", "images", "moderation_versions")
#: Rows are sent to PostgreSQL in batches of this many.
BATCH = 500
MEMBER_BALANCES = (
    "SELECT guild_id, user_id, period, SUM(delta) AS total FROM ledger "
    "GROUP BY guild_id, user_id, period"
)
SERVER_BALANCES = "SELECT guild_id, SUM(delta) AS total FROM ledger GROUP BY guild_id"
SQLITE_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
)
PG_COLUMNS = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'public' AND table_name <> 'schema_version'
"""
PG_IDENTITY = """
SELECT table_name FROM information_schema.columns
WHERE table_schema = 'public' AND column_name = 'id' AND is_identity = 'YES'
"""


class MoveRefused(Exception):
    """The move cannot start; the message is one sentence for the owner."""


@dataclass(frozen=True)
class MoveReport:
    """What was copied and what the check found."""

    counts: dict[str, tuple[int, int]]  # table -> (rows in SQLite, rows in PostgreSQL)
    members: int  # (member, server, period) balances compared
    servers: int
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


async def move_to_postgres(source: Path, url: str) -> MoveReport:
    """Copy the SQLite database at ``source`` into the empty PostgreSQL database at ``url``."""
    if not await asyncio.to_thread(source.is_file):
        raise MoveRefused(f"there is no SQLite database at {source}")
    lite = await aiosqlite.connect(f"file:{source}?mode=ro", uri=True)
    try:
        version = (await (await lite.execute("PRAGMA user_version")).fetchone() or (0,))[0]
        latest = len(migration_scripts())
        if version != latest:
            raise MoveRefused(
                f"{source} is at schema {version} and this bot's is {latest}: start the bot "
                "on it once (it migrates the file), stop it, then move"
            )
        pg = await PostgresDatabase.open(url)
        try:
            async with pg.transaction() as tx:
                conn = tx.connection
                await _refuse_rows(conn)
                await lite.execute("BEGIN")  # one snapshot of every table (WAL)
                counts = await _copy(lite, conn)
                await lite.execute("COMMIT")
            return await _check(source, pg, counts)
        finally:
            await pg.close()
    finally:
        await lite.close()


async def _refuse_rows(conn: asyncpg.Connection) -> None:
    tables = [r["table_name"] for r in await conn.fetch(PG_COLUMNS)]
    held = []
    for table in sorted(set(tables)):
        if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):  # noqa: S608
            held.append(table)
    if held:
        raise MoveRefused(
            f"the PostgreSQL database already holds data (in {', '.join(held)}): "
            "migrate only into an empty database"
        )


async def _copy(lite: aiosqlite.Connection, conn: asyncpg.Connection) -> dict[str, int]:
    """Every table's rows (tables named by the schemas, never by input); rows copied per table."""
    types: dict[str, dict[str, str]] = {}
    for row in await conn.fetch(PG_COLUMNS):
        types.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    tables = [r[0] for r in await (await lite.execute(SQLITE_TABLES)).fetchall()]
    missing = [t for t in tables if t not in types]
    if missing:
        raise MoveRefused(
            f"PostgreSQL has no table {', '.join(missing)}: this bot's PostgreSQL migrations "
            "lag behind its SQLite ones"
        )
    tables.sort(key=lambda t: (FIRST.index(t) if t in FIRST else len(FIRST), t))
    copied = {}
    for table in tables:
        cursor = await lite.execute(f'SELECT * FROM "{table}"')  # noqa: S608
        columns = [d[0] for d in cursor.description]
        kinds = [types[table][c] for c in columns]
        copied[table] = 0
        while rows := await cursor.fetchmany(BATCH):
            records = [tuple(_as(k, v) for k, v in zip(kinds, r, strict=True)) for r in rows]
            await conn.copy_records_to_table(table, records=records, columns=columns)
            copied[table] += len(records)
        await cursor.close()
    for row in await conn.fetch(PG_IDENTITY):  # new rows continue after the copied ids
        table = row["table_name"]
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
            f'COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'
        )
    return copied


def _as(kind: str, value: Any) -> Any:
    """A SQLite value in the PostgreSQL column's type (SQLite's affinity is loose)."""
    if value is None:
        return None
    if kind == "text" and not isinstance(value, str):
        return str(value)
    if kind == "bigint" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "double precision" and isinstance(value, int):
        return float(value)
    return value


async def _check(source: Path, pg: PostgresDatabase, copied: dict[str, int]) -> MoveReport:
    """Count and balance again, from both sides, after the commit."""
    lite = await aiosqlite.connect(f"file:{source}?mode=ro", uri=True)
    try:
        counts = {}
        for table in copied:
            row = await (await lite.execute(f'SELECT COUNT(*) FROM "{table}"')).fetchone()  # noqa: S608
            there = await pg.fetch_one(f'SELECT COUNT(*) AS n FROM "{table}"')  # noqa: S608
            counts[table] = (int(row[0]) if row else 0, int(there["n"]) if there else 0)
        members = {tuple(r[:3]): int(r[3]) for r in await lite.execute_fetchall(MEMBER_BALANCES)}
        servers = {r[0]: int(r[1]) for r in await lite.execute_fetchall(SERVER_BALANCES)}
    finally:
        await lite.close()
    pg_members = {
        (r["guild_id"], r["user_id"], r["period"]): int(r["total"])
        for r in await pg.fetch_all(MEMBER_BALANCES)
    }
    pg_servers = {r["guild_id"]: int(r["total"]) for r in await pg.fetch_all(SERVER_BALANCES)}
    mismatched = [
        f"{t}: {a} rows in SQLite, {b} in PostgreSQL" for t, (a, b) in counts.items() if a != b
    ]
    if pg_members != members:
        mismatched.append("member balances differ")
    if pg_servers != servers:
        mismatched.append("server balances differ")
    return MoveReport(counts, len(members), len(servers), mismatched)


# -- backup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    integrity: str  # "ok", or what ``PRAGMA integrity_check`` found


async def backup_sqlite(source: Path, dest: Path) -> BackupReport:
    """An online, consistent copy of the SQLite file ``source`` at ``dest`` (a new file)."""
    return await asyncio.to_thread(_backup, source, dest)


def _backup(source: Path, dest: Path) -> BackupReport:
    if not source.is_file():
        raise MoveRefused(f"there is no SQLite database at {source}")
    if dest.exists():
        raise MoveRefused(f"{dest} already exists: give the backup a new file name")
    partial = dest.with_name(dest.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=-1)  # one step: one consistent moment, never restarted
            found = [r[0] for r in dst.execute("PRAGMA integrity_check")]
        finally:
            dst.close()
    finally:
        src.close()
    with partial.open("rb") as copy:
        os.fsync(copy.fileno())
    partial.replace(dest)
    return BackupReport(dest, dest.stat().st_size, "; ".join(found))
