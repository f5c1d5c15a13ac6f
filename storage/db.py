"""The one aiosqlite connection: WAL, migrations, and serialized write transactions in groups.

One connection is shared by the whole bot. aiosqlite runs it on a thread, so
two coroutines issuing statements on it at once would interleave them;
``Database.transaction()`` therefore takes an ``asyncio.Lock`` for the body of
each unit of work, so a check-then-write (credits, caps) is atomic.

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
each unit's ``SAVEPOINT`` ride along with the unit's first statement.

Because the connection is shared, a transaction left open poisons every later
write. ``COMMIT`` and ``ROLLBACK`` therefore run to their end even when the task
awaiting them is cancelled (a stop, a timeout): the statement is finished
under the lock, a unit cancelled in its body is rolled back to its savepoint
(the whole transaction when it was the group's only unit), and only then is
the cancellation passed on. A unit cancelled while its group commits waits for
the commit, then the cancellation goes on. A transaction found open on entry,
not ours, is rolled back.

The file uses ``auto_vacuum=INCREMENTAL`` (set on a new file, applied to an old
one by a single ``VACUUM`` at open), so pages freed by the image sweep are
given back to the disk with ``PRAGMA incremental_vacuum``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiosqlite

from storage import grouping
from storage.grouping import Params, Step
from storage.migrating import migration_scripts, statements_of
from storage.port import AfterCommit as AfterCommit  # re-exported: its old home
from storage.port import UnitOfWork

if TYPE_CHECKING:
    from storage.approvals import ApprovalRepository
    from storage.audit import AuditRepository
    from storage.blocklist import BlocklistRepository
    from storage.delivery import DeliveryPrefsRepository
    from storage.guilds import GuildRepository
    from storage.jobs import JobRepository
    from storage.ledger import LedgerRepository
    from storage.moderation import BlockRepository, ModerationSettingsRepository, StrikeRepository

log = logging.getLogger(__name__)

#: ``PRAGMA auto_vacuum`` answers 2 for INCREMENTAL.
_INCREMENTAL = 2
#: The health check's write: one row, overwritten each time.
HEARTBEAT = """
INSERT INTO bot_state (key, value) VALUES ('healthz_heartbeat', :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""
T = TypeVar("T")
#: A group's committer lets units still queueing for the lock in first, up to these bounds.
GROUP_UNITS = 256
GROUP_SECONDS = 0.05


def sha256_hex(data: bytes) -> str:
    """The content address of a stored image (also registered as SQL ``sha256()``)."""
    return hashlib.sha256(bytes(data)).hexdigest()


def _probe(path: Path) -> None:
    sqlite3.connect(path).close()


class DatabaseOpenError(Exception):
    """The database file cannot be opened or prepared; the message is one sentence for the owner."""


class Database:
    """The SQLite engine: implements ``storage.port.Storage`` (units of work, repositories)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        #: The group of units of work sharing the open SQLite transaction (``transaction()``).
        self._group: grouping.Group | None = None
        self._entering = 0  # units of work waiting for the lock
        #: Told of each audit row after its commit (``storage.audit.set_audit_sink``): held
        #: by the database it belongs to, not in a module-global registry.
        self.audit_sink: Callable[[Any], Awaitable[None]] | None = None

    # The repositories, one of each, built on first use (imported here: they import us).

    @functools.cached_property
    def jobs(self) -> JobRepository:
        from storage.jobs import JobRepository

        return JobRepository(self)

    @functools.cached_property
    def ledger(self) -> LedgerRepository:
        from storage.ledger import LedgerRepository

        return LedgerRepository(self)

    @functools.cached_property
    def guilds(self) -> GuildRepository:
        from storage.guilds import GuildRepository

        # One process owns the file, so every change comes through this repository.
        return GuildRepository(self, cache=True)

    @functools.cached_property
    def approvals(self) -> ApprovalRepository:
        from storage.approvals import ApprovalRepository

        return ApprovalRepository(self)

    @functools.cached_property
    def audit(self) -> AuditRepository:
        from storage.audit import AuditRepository

        return AuditRepository(self)

    @functools.cached_property
    def blocklist(self) -> BlocklistRepository:
        from storage.blocklist import BlocklistRepository

        return BlocklistRepository(self)

    @functools.cached_property
    def moderation(self) -> ModerationSettingsRepository:
        """With no defaults of the owner's: the core passes its own (``HAILUO_APPROVAL``)."""
        from storage.moderation import ModerationSettingsRepository

        return ModerationSettingsRepository(self)

    @functools.cached_property
    def blocks(self) -> BlockRepository:
        from storage.moderation import BlockRepository

        return BlockRepository(self)

    @functools.cached_property
    def strikes(self) -> StrikeRepository:
        from storage.moderation import StrikeRepository

        return StrikeRepository(self)

    @functools.cached_property
    def delivery(self) -> DeliveryPrefsRepository:
        from storage.delivery import DeliveryPrefsRepository

        return DeliveryPrefsRepository(self)

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
            conn = await aiosqlite.connect(str(path), isolation_level=None)
            conn.row_factory = aiosqlite.Row
            # First: on a new file it only takes effect before anything is written.
            await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            await conn.execute("PRAGMA journal_mode=WAL")
            # FULL, not NORMAL: with WAL, NORMAL may lose the last commits on power loss, and
            # a lost ``submitting`` mark after the provider accepted would mean a second
            # submission and a second charge. Durability of money beats a few fsyncs.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            # Migration 005 addresses the images already stored by their content.
            await conn.create_function("sha256", 1, sha256_hex, deterministic=True)
            db = cls(conn)
            await db._incremental_vacuum_mode()
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
            await self._finish(self._flush)
            await self._finish(self._vacuum_and_checkpoint)

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
        """Commit the open group (its units are waiting for it), then close."""
        async with self._lock:
            await self._finish(self._flush)
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
            tx = Tx(self._conn, self, unit)
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
        finally:
            self._lock.release()
        await self._committed(group)
        for callback in tx.committed():
            try:
                await callback()
            except Exception:  # the change is committed; a follow-up never undoes it
                log.exception("after-commit callback failed")

    def _open_group(self) -> grouping.Group:
        """A new group, and its committer: queued for the lock behind every unit waiting now,
        so those join this group and the ones coming later the next."""
        loop = asyncio.get_running_loop()
        group = grouping.Group(loop.create_future(), opened=loop.time())
        # Retrieved here, so a failure nobody awaits (every unit failed) is not reported twice.
        group.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        group.committer = asyncio.create_task(self._commit_later(group), name="hailuo-commit")
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
                cancelled = not group.done.done() or cancelled
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


class Tx:
    """The statements of one unit of work (one hop to aiosqlite's thread each)."""

    def __init__(
        self, conn: aiosqlite.Connection, db: Database, unit: grouping.Unit | None = None
    ) -> None:
        self._conn = conn
        self.db = db
        self._unit = unit
        self._after: list[AfterCommit] = []

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once this transaction committed (never if it rolls back)."""
        self._after.append(callback)

    def committed(self) -> list[AfterCommit]:
        """The callbacks to run now that the transaction committed (each handed out once)."""
        callbacks, self._after = self._after, []
        return callbacks

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        unit = self._unit
        if unit is None:
            return await self.db._on_thread(fn, *args)
        if unit.closed:
            raise RuntimeError("a statement after its unit of work ended")
        return await self.db._on_thread(grouping.in_unit, unit, lambda c: fn(c, *args))

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


def statements(uow: UnitOfWork) -> Tx:
    """The SQLite statements behind a unit of work (only ``storage/`` sees them)."""
    if not isinstance(uow, Tx):
        raise TypeError(f"not a unit of work of this database: {type(uow).__name__}")
    return uow


@asynccontextmanager
async def within(db: Database, tx: UnitOfWork | None) -> AsyncIterator[Tx]:
    """The caller's unit of work when it has one open, else a transaction of our own."""
    if tx is not None:
        yield statements(tx)
    else:
        async with db.transaction() as own:
            yield own


def reading(db: Database, tx: UnitOfWork | None) -> Database | Tx:
    """Where a read goes: inside the caller's unit of work, else the committed state."""
    return statements(tx) if tx is not None else db
