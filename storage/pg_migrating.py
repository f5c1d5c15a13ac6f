"""PostgreSQL's numbered migrations (``storage/migrations_pg/``) and their runner.

Numbered 001, 002, … without gaps, like SQLite's; the applied ones are rows of
``schema_version`` (number, file name, when). Each script runs whole in one
transaction (PostgreSQL's DDL is transactional, so a failed script leaves
nothing behind), under an advisory lock of its own, so two bot processes
starting at once on an empty database do not both apply it: the second waits,
then finds the number recorded.

How the numbers map to SQLite's: ``storage/migrations_pg/README.md``.
"""

from __future__ import annotations

import logging
import re
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
#: Taken while migrating; not the write lock, so a running bot's writes are not the issue.
MIGRATION_LOCK = 0x4861696C756F + 1

CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def pg_migration_scripts() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of each script, in order; a gap in the numbers is refused."""
    found = []
    for entry in resources.files("storage.migrations_pg").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 001, 002, … without gaps: {numbers}")
    return found


async def schema_version(conn: asyncpg.Connection) -> int:
    """The highest migration applied (0 on an empty database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


async def migrate(conn: asyncpg.Connection) -> None:
    """Apply each script not yet recorded, in order, each in its own transaction."""
    for number, name, sql in pg_migration_scripts():
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(CREATE_VERSION_TABLE)
            if number <= await schema_version(conn):
                continue
            log.info("applying PostgreSQL migration %s", name)
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)", number, name
            )
