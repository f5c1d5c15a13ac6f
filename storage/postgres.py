"""The PostgreSQL engine (asyncpg): the same repositories and guarantees as SQLite.

Chosen by a ``postgresql://user:pass@host/db`` URL in ``HAILUO_DATABASE``
(``storage.opening.open_storage``). The repository classes are SQLite's own:
this engine offers them the same small surface (``storage.engine``) and turns
their SQL into PostgreSQL's in one place (``storage.pg_dialect``).

Why it is built the way it is:

- **Every unit of work first takes ``pg_advisory_xact_lock(WRITE_LOCK)``**: the
  analogue of SQLite's ``BEGIN IMMEDIATE``. The core checks and then writes in one
  unit of work ("credits left, then reserve", "jobs in flight under the cap, then
  create", "budget left, then reserve"). Under PostgreSQL's READ COMMITTED two
  such units in two processes could both read "one credit left" and both reserve.
  A lock in the database (not in process memory) makes them take turns across
  every bot process on the database, and PostgreSQL releases it at the commit or
  rollback, or when a dead process's connection closes. Writers take turns as on
  SQLite, which the bot's write rate allows (``bench/``); reads never wait for it.
- **One unit of work at a time per process** (an ``asyncio.Lock`` before a
  connection is taken): at most one pooled connection waits for the database
  lock, so reads made while a unit of work is open always find a connection.
- **Cancellation never leaves a connection inside a transaction**: ``BEGIN``,
  ``COMMIT``, ``ROLLBACK`` and the connection's return to the pool run to their
  end even when the task awaiting them is cancelled (a stop, a timeout); a
  connection whose rollback fails is closed, which ends its transaction on the
  server. Then the cancellation goes on.
- **A constraint or an append-only trigger refusing a write** raises
  ``ConstraintError``, a subclass of ``sqlite3.IntegrityError``, so the one
  ``except`` in a repository (DB-API's IntegrityError) holds for both engines.
- Migrations are ``storage/migrations_pg/`` with their own numbers, recorded in a
  ``schema_version`` table (``storage.pg_migrating``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg

from storage.db import HEARTBEAT, DatabaseOpenError
from storage.engine import Params, Row, Statements, Step, run_steps
from storage.pg_dialect import returning_id, translate
from storage.pg_migrating import migrate, schema_version
from storage.repositories import Repositories
from storage.to_the_end import finish

log = logging.getLogger(__name__)

#: The database lock every unit of work takes first ("Hailuo" in ASCII).
WRITE_LOCK = 0x4861696C756F
#: A unit of work's first statement: the transaction and, in the same round trip, the lock.
BEGIN = f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"


class ConstraintError(sqlite3.IntegrityError):
    """PostgreSQL refused a write: a constraint, a unique index or an append-only trigger."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, user = head.partition("://")
    return f"{scheme}{sep}{user.split(':', 1)[0]}:***@{tail}" if ":" in user else url


def _numeric(text: str) -> int | Decimal:
    """``SUM`` over integers answers ``numeric``: an integer, as SQLite gives (no column
    of the schema is ``numeric``, so only such sums are decoded here)."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else value


async def _prepare(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text"
    )


async def _reset(conn: asyncpg.Connection) -> None:
    """Before a connection goes back to the pool: end a transaction left open, if any.

    asyncpg's default also unlocks session advisory locks, closes cursors and stops
    listening, one more round trip on every return; this engine takes only
    transaction-scoped locks and opens no cursor and no listener, so only an open
    transaction (a cancelled read) needs ending.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """PostgreSQL's integrity errors as ``ConstraintError`` (the DB-API class both share)."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise ConstraintError(str(exc)) from exc


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as ``UPDATE 1`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresDatabase(Repositories):
    """The PostgreSQL engine: implements ``storage.port.Storage`` (units of work, repositories)."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._lock = asyncio.Lock()
        self.url = url
        #: Told of each audit row after its commit (``storage.audit.set_audit_sink``).
        self.audit_sink: Callable[[Any], Awaitable[None]] | None = None

    @classmethod
    async def open(cls, url: str, *, max_size: int = 10) -> PostgresDatabase:
        """Connect (a pool of up to ``max_size`` connections) and migrate.

        Any failure is one ``DatabaseOpenError`` naming the server (never the
        password) and the reason, so the bot says it in one sentence.
        """
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=max_size, init=_prepare, reset=_reset, timeout=30
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise DatabaseOpenError(f"cannot open the database {redacted(url)}: {exc}") from None
        db = cls(pool, url)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await pool.close()
            raise DatabaseOpenError(f"cannot migrate the database {redacted(url)}: {exc}") from None
        return db

    async def close(self) -> None:
        await self._pool.close()

    async def schema_version(self) -> int:
        async with self._pool.acquire() as conn:
            return await schema_version(conn)

    async def incremental_vacuum(self) -> None:
        """Nothing to do: PostgreSQL's autovacuum gives freed space back by itself."""

    async def ping(self) -> bool:
        """Whether the database answers (the health check)."""
        try:
            return await self.fetch_one("SELECT 1") is not None
        except Exception:  # the health check reports, never raises
            log.exception("database ping failed")
            return False

    async def heartbeat(self, value: str) -> bool:
        """Whether the database takes a write (the health check): one tiny committed row."""
        try:
            async with self.transaction() as tx:
                await tx.execute(HEARTBEAT, {"value": value})
        except Exception:  # the health check reports, never raises
            log.exception("database heartbeat write failed")
            return False
        return True

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """One row of the committed state (outside any unit of work)."""
        text, args = translate(sql, params)
        with _refusals():
            async with self._pool.acquire() as conn:
                return await conn.fetchrow(text, *args)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = translate(sql, params)
        with _refusals():
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(text, *args))

    async def batch(self, steps: Sequence[Step]) -> list[list[Row]]:
        """Several reads of the committed state, one after the other."""
        return await run_steps(self.fetch_all, steps)

    def bulk(self) -> AbstractAsyncContextManager[PgTx]:
        """A unit of work that may scan or write many rows: on a server it waits off the
        loop like any other."""
        return self.transaction()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTx]:
        """One write transaction under the database lock; its ``after_commit`` callbacks run
        once it committed."""
        async with self._lock:
            conn: asyncpg.Connection = await self._pool.acquire()
            try:
                await finish(lambda: self._begin(conn))
                tx = PgTx(conn, self)
                try:
                    yield tx
                except BaseException:
                    await finish(lambda: _rollback(conn))
                    raise
                await finish(lambda: _commit(conn))
            finally:
                await finish(lambda: self._pool.release(conn))
        for callback in tx.committed():
            try:
                await callback()
            except Exception:  # the change is committed; a follow-up never undoes it
                log.exception("after-commit callback failed")

    @staticmethod
    async def _begin(conn: asyncpg.Connection) -> None:
        try:
            await conn.execute(BEGIN)
        except BaseException:
            await _rollback(conn)
            raise


async def _commit(conn: asyncpg.Connection) -> None:
    try:
        with _refusals():  # a deferred constraint is checked at the commit
            await conn.execute("COMMIT")
    except BaseException:
        await _rollback(conn)
        raise


async def _rollback(conn: asyncpg.Connection) -> None:
    """End the transaction; a connection that cannot is closed (the server then ends it)."""
    try:
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute("ROLLBACK")
    except Exception:
        log.warning("closing a connection whose rollback failed")
        conn.terminate()


class PgTx(Statements):
    """The statements of one open PostgreSQL transaction.

    One connection runs one statement at a time, while the core may issue several
    reads of a unit of work at once (``asyncio.gather``, as SQLite's one queue of
    statements allows): they take turns here, in the order they were issued.
    """

    def __init__(self, conn: asyncpg.Connection, db: PostgresDatabase) -> None:
        super().__init__(db)
        self._conn = conn
        self._turn = asyncio.Lock()

    @property
    def connection(self) -> asyncpg.Connection:
        """The transaction's connection, for bulk work inside ``storage/`` (``COPY``)."""
        return self._conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        text, args = translate(sql, params)
        with _refusals():
            async with self._turn:
                return _changed(await self._conn.execute(text, *args))

    async def insert(self, sql: str, params: Params = ()) -> int:
        text, args = translate(sql, params)
        with _refusals():
            async with self._turn:
                row_id = await self._conn.fetchval(returning_id(text), *args)
        return int(row_id)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        text, args = translate(sql, params)
        with _refusals():
            async with self._turn:
                return await self._conn.fetchrow(text, *args)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = translate(sql, params)
        with _refusals():
            async with self._turn:
                return list(await self._conn.fetch(text, *args))
