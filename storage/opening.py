"""The one entry point that opens the storage ``HAILUO_DATABASE`` names.

A ``postgresql://`` (or ``postgres://``) URL opens the PostgreSQL engine; anything
else is a SQLite file path. Both engines implement ``storage.port.Storage`` with
the same repositories, and both raise ``DatabaseOpenError`` (one sentence, no
password) when the database cannot be opened or migrated.
"""

from __future__ import annotations

from pathlib import Path

from storage.db import Database, DatabaseOpenError
from storage.postgres import PostgresDatabase

#: Either engine, as the bot holds it: the port plus ``close``, ``heartbeat``, ``schema_version``.
AnyDatabase = Database | PostgresDatabase

__all__ = ["AnyDatabase", "DatabaseOpenError", "is_postgres_url", "open_storage"]


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


async def open_storage(target: str | Path) -> AnyDatabase:
    """Open (and migrate) the database ``target`` names: a PostgreSQL URL or a SQLite path."""
    if is_postgres_url(target):
        return await PostgresDatabase.open(str(target))
    return await Database.open(target)
