"""The small surface the repositories use, shared by both engines (SQLite and PostgreSQL).

A repository (``storage/jobs.py``, ``ledger.py``, …) needs only this: units of
work from ``transaction()`` whose statements are ``execute`` (rows changed),
``insert`` (the new row's id), ``fetch_one`` and ``fetch_all``; the same two
reads on the engine for the committed state; and ``incremental_vacuum`` after a
large delete. Statements are written once, in SQLite's dialect with ``:name``
parameters; the PostgreSQL engine translates them in one place
(``storage.pg_dialect``). Rows are read by column name or position, and
``dict(row)`` gives every column.

So each repository class serves both engines, and a fix to a query is made
once. The port (``storage.port``) stays what the core sees; this is what
only ``storage/`` sees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Protocol

from storage.port import AfterCommit, UnitOfWork

Params = Mapping[str, Any] | tuple[Any, ...]
#: A row of either engine (``sqlite3.Row``, ``asyncpg.Record``): by name, by position, ``dict()``.
Row = Any
#: One statement of a batch: its SQL and parameters, or a function of the earlier
#: statements' rows that gives the parameters (``None``: skip this statement).
Step = tuple[str, Params | Callable[[list[list[Row]]], Params | None]]


async def run_steps(
    fetch_all: Callable[[str, Params], Awaitable[list[Row]]], steps: Sequence[Step]
) -> list[list[Row]]:
    """A batch, one statement after the other; each step's rows (empty when skipped).

    The SQLite engine runs a whole batch in one call instead (``storage.grouping.batch``:
    inline in a unit of work, one hop to its thread outside one); an engine with no such
    trick runs this."""
    results: list[list[Row]] = []
    for sql, params in steps:
        bound = params(results) if callable(params) else params
        results.append([] if bound is None else await fetch_all(sql, bound))
    return results


class Statements:
    """The statements of one open unit of work; each engine's ``Tx`` is one.

    Only a unit of work of this kind reaches SQL (``statements``): a duck-typed
    stand-in that merely has ``after_commit`` is refused.
    """

    #: The engine the unit of work belongs to (the audit log reads its sink from it).
    db: Engine | None

    def __init__(self, db: Engine | None = None) -> None:
        self.db = db
        self._after: list[AfterCommit] = []

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once this transaction committed (never if it rolls back)."""
        self._after.append(callback)

    def committed(self) -> list[AfterCommit]:
        """The callbacks to run now that the transaction committed (each handed out once)."""
        callbacks, self._after = self._after, []
        return callbacks

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        raise NotImplementedError

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one ``INSERT`` into a table with an ``id`` key; return the new row's id."""
        raise NotImplementedError

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    async def batch(self, steps: Sequence[Step]) -> list[list[Row]]:
        """Several statements in order; each one's rows (``RETURNING``).

        A step's parameters may be a function of the earlier steps' rows, returning
        ``None`` to skip it (a guarded write whose guard found nothing)."""
        return await run_steps(self.fetch_all, steps)


class Engine(Protocol):
    """What a repository holds: either engine (``storage.db.Database``, ``storage.postgres``)."""

    audit_sink: Callable[[Any], Awaitable[None]] | None
    #: ``sqlite`` or ``postgresql``: the few statements that differ by more than the
    #: translation in ``storage.pg_dialect`` ask it (a claim's row lock, ``storage.leases``).
    dialect: str

    def transaction(self) -> AbstractAsyncContextManager[Statements]: ...

    def bulk(self) -> AbstractAsyncContextManager[Statements]:
        """A unit of work whose statements may scan or write many rows: off the event loop."""
        ...

    async def fetch_one(self, sql: str, params: Params = ...) -> Row | None: ...

    async def fetch_all(self, sql: str, params: Params = ...) -> list[Row]: ...

    async def batch(self, steps: Sequence[Step]) -> list[list[Row]]: ...

    async def incremental_vacuum(self) -> None: ...


def statements(uow: UnitOfWork) -> Statements:
    """The statements behind a unit of work (only ``storage/`` sees them)."""
    if not isinstance(uow, Statements):
        raise TypeError(f"not a unit of work of this database: {type(uow).__name__}")
    return uow


def within(db: Engine, tx: UnitOfWork | None) -> AbstractAsyncContextManager[Statements]:
    """The caller's unit of work when it has one open, else a transaction of our own (that
    one itself, not wrapped: every write of a job goes through here)."""
    if tx is not None:
        return nullcontext(statements(tx))
    return db.transaction()


def reading(db: Engine, tx: UnitOfWork | None) -> Engine | Statements:
    """Where a read goes: inside the caller's unit of work, else the committed state."""
    return statements(tx) if tx is not None else db
