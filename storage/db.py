"""The one aiosqlite connection: WAL, migrations, and serialized write transactions in groups.

One connection is shared by the whole bot. aiosqlite runs it on a thread, so
two coroutines issuing statements on it at once would interleave them;
``Database.transaction()`` therefore takes an ``asyncio.Lock`` for the body of
each unit of work, so a check-then-write (credits, caps) is atomic.

Units of work are committed in groups (``storage.committing``): one ``COMMIT``, one
fsync, for every unit queued behind the first.

The file uses ``auto_vacuum=INCREMENTAL`` (set on a new file, applied to an old
one by a single ``VACUUM`` at open), so pages freed by the image sweep are
given back to the disk with ``PRAGMA incremental_vacuum``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from storage.committing import GroupCommit
from storage.committing import Tx as Tx  # re-exported: its old home
from storage.engine import reading as reading  # re-exported: their old home
from storage.engine import statements as statements
from storage.engine import within as within
from storage.migrating import migration_scripts, statements_of
from storage.port import AfterCommit as AfterCommit  # re-exported: its old home
from storage.repositories import Repositories
from storage.to_the_end import finish

if TYPE_CHECKING:
    from storage.guilds import GuildRepository

log = logging.getLogger(__name__)

#: ``PRAGMA auto_vacuum`` answers 2 for INCREMENTAL.
_INCREMENTAL = 2
#: The health check's write: one row, overwritten each time.
HEARTBEAT = """
INSERT INTO bot_state (key, value) VALUES ('healthz_heartbeat', :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""


def sha256_hex(data: bytes) -> str:
    """The content address of a stored image (also registered as SQL ``sha256()``)."""
    return hashlib.sha256(bytes(data)).hexdigest()


def _probe(path: Path) -> None:
    sqlite3.connect(path).close()


class DatabaseOpenError(Exception):
    """The database file cannot be opened or prepared; the message is one sentence for the owner."""


class Database(GroupCommit, Repositories):
    """The SQLite engine: implements ``storage.port.Storage`` (units of work, repositories)."""

    dialect = "sqlite"  # the SQL engine: the few statements that differ ask (storage.leases)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        super().__init__(conn)
        #: Told of each audit row after its commit (``storage.audit.set_audit_sink``): held
        #: by the database it belongs to, not in a module-global registry.
        self.audit_sink: Callable[[Any], Awaitable[None]] | None = None

    @functools.cached_property
    def guilds(self) -> GuildRepository:
        from storage.guilds import GuildRepository

        # One process owns the file, so every change comes through this repository.
        return GuildRepository(self, cache=True)

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open (creating it if needed) and migrate the database at ``path``.

        Any failure to open, prepare or migrate the file is one ``DatabaseOpenError``
        that names the path and the reason, so the bot can say it in one sentence
        instead of a traceback (a bad ``HAILUO_DATABASE`` is a setting, not a crash).
        """
        conn: aiosqlite.Connection | None = None
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # Opened once with the standard module first: when aiosqlite's own connect
                # fails, its worker thread outlives the event loop and prints a traceback.
                await asyncio.to_thread(_probe, Path(path))
            # Used from the loop's thread too: a unit's statements run inline (storage.committing).
            conn = await aiosqlite.connect(str(path), isolation_level=None, check_same_thread=False)
            conn.row_factory = aiosqlite.Row
            # First: on a new file it only takes effect before anything is written.
            await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            await conn.execute("PRAGMA journal_mode=WAL")
            # FULL, not NORMAL: with WAL, NORMAL may lose the last commits on power loss, and
            # a lost ``submitting`` mark after the provider accepted would mean a second
            # submission and a second charge. Durability of money beats a few fsyncs.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            # No busy handler: it would block the loop in a unit's inline ``BEGIN``. Waiting
            # for another process's lock is done by storage.committing and grouping.patiently.
            await conn.execute("PRAGMA busy_timeout=0")
            # Migration 005 addresses the images already stored by their content.
            await conn.create_function("sha256", 1, sha256_hex, deterministic=True)
            db = cls(conn)
            await db._incremental_vacuum_mode()  # first: its one VACUUM copies through temp
            # Each unit of a group runs in a savepoint, and the first change of a page inside
            # one copies the page to a sub-journal: in a file once it passes 64 KiB, a write
            # and a read of a temporary file per unit. In memory it costs a copy: the ledger
            # ran about a third faster (bench.ledger). The bot's sorts and temporary tables
            # are small (the claims take 128 rows by index), so memory stays bounded.
            await conn.execute("PRAGMA temp_store=MEMORY")
            await db.migrate()
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                await conn.close()
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise DatabaseOpenError(f"cannot open the database {path}: {reason}") from None
        return db

    async def _incremental_vacuum_mode(self) -> None:
        """Turn on ``auto_vacuum=INCREMENTAL``: free on a new file, one ``VACUUM`` on an old one."""
        row = await self.fetch_one("PRAGMA auto_vacuum")
        if row is not None and int(row[0]) == _INCREMENTAL:
            return
        # An existing file keeps its old mode until rebuilt: once, at start-up, before any work.
        log.info("rebuilding the database once for incremental vacuum")
        await self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await self._conn.execute("VACUUM")

    async def incremental_vacuum(self) -> None:
        """Give the pages freed by deletions back to the file system (outside any transaction)."""
        async with self._lock:
            await finish(self._flush)
            await finish(self._vacuum_and_checkpoint)

    async def _vacuum_and_checkpoint(self) -> None:
        # Each step of the pragma frees one page and ``execute`` steps a row-less statement
        # only once, so it goes through ``executescript``, which steps it to its end. The
        # checkpoint then writes the shrunk database back to the main file, WAL truncated.
        await self._conn.executescript(
            "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);"
        )

    async def file_pages(self) -> int:
        """The file's size in pages (what incremental vacuum shrinks)."""
        row = await self.fetch_one("PRAGMA page_count")
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Commit the open group (its units are waiting for it), then close.

        The write lock is held to the end: a unit's statements run inline on this thread
        while aiosqlite's closes the connection on its own would use a freed connection (a
        crash of the process, not an error). A unit that gets the lock after finds it
        closed and fails with ``ValueError``."""
        async with self._lock:
            with contextlib.suppress(ValueError):  # aiosqlite's "closed already": nothing open
                await finish(self._flush)
            await self._conn.close()

    async def ping(self) -> bool:
        """Whether the database answers (the health check)."""
        try:
            return await self.fetch_one("SELECT 1") is not None
        except Exception:  # the health check reports, never raises
            log.exception("database ping failed")
            return False

    async def heartbeat(self, value: str) -> bool:
        """Whether the database takes a write (the health check): one tiny committed row.

        A read alone passes while every write fails (a transaction left open, a full
        disk, a read-only file), so the health check proves a write.
        """
        try:
            async with self.transaction() as tx:
                await tx.execute(HEARTBEAT, {"value": value})
        except Exception:  # the health check reports, never raises
            log.exception("database heartbeat write failed")
            return False
        return True

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Apply each numbered script once, in order, each in its own transaction."""
        current = await self.schema_version()
        for number, name, sql in migration_scripts():
            if number <= current:
                continue
            log.info("applying migration %s", name)
            async with self.transaction() as tx:
                for statement in statements_of(sql):
                    await tx.execute(statement)
                # PRAGMA takes no parameters; ``number`` is an int parsed from our own file name.
                await tx.execute(f"PRAGMA user_version = {int(number)}")
