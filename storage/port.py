"""The storage port: what the core may know of storage, and nothing more.

The core (``hailuo/``) works with repositories and units of work, never with a
connection, a ``Tx``, SQL or SQLite's behaviour. A unit of work is opened by
``Transactions.transaction()``; every repository call handed it commits with
the others or not at all, and units of work are serialised against each other
(the SQLite engine: one connection, one lock, ``BEGIN IMMEDIATE``), so a
check-then-write such as "credits left, then reserve" is atomic. A repository
call made without one runs in a unit of work of its own (or, for a read, on
the committed state).

The repository interfaces below are what the core calls; the SQLite classes in
this package implement them (``mypy`` checks it: ``_sqlite_implements_the_port``).
A PostgreSQL backend implements the same protocols; nothing above ``storage``
changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hailuo.status import JobStatus
    from storage.approvals import ApprovalDecision, ApprovalRequest, DecisionResult
    from storage.audit import AuditAction, AuditPage
    from storage.jobs import Job, NewJob, StoredImage
    from storage.ledger import LedgerEntry

#: Work to do once a unit of work has committed (never if it rolled back).
AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork(Protocol):
    """One atomic piece of storage work; the core passes it on to repository calls."""

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once this unit of work committed (never if it rolls back)."""
        ...


class Transactions(Protocol):
    """Where units of work come from (the SQLite ``Database``)."""

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Open a unit of work: committed when the block ends, rolled back if it raises."""
        ...


class JobStore(Protocol):
    """The jobs: created with their reservation, moved by guarded transitions only."""

    async def create(self, tx: UnitOfWork, new: NewJob, now: float) -> int: ...

    async def get(self, job_id: int, tx: UnitOfWork | None = None) -> Job | None: ...

    async def images(self, job_id: int) -> dict[str, StoredImage]: ...

    async def open_jobs(self) -> list[Job]: ...

    async def by_status(self, status: JobStatus) -> list[Job]: ...

    async def by_task(self, provider: str, task_id: str) -> Job | None: ...

    async def recent_for_member(
        self, guild_id: int, user_id: int, limit: int = 10
    ) -> list[Job]: ...

    async def set_status_message(
        self, job_id: int, channel_id: int, message_id: int, now: float
    ) -> None: ...

    async def claim_status_message(self, job_id: int, message_id: int, now: float) -> bool: ...

    async def transition(
        self,
        job: Job,
        dst: JobStatus,
        now: float,
        *,
        reason: str = "",
        actor_id: int | None = None,
        tx: UnitOfWork | None = None,
        **updates: Any,
    ) -> Job:
        """Move ``job`` from the state it was read in to ``dst`` (else ``StaleTransition``)."""
        ...

    async def update(self, job: Job, now: float, **updates: Any) -> Job: ...

    async def get_state(self, key: str) -> str | None: ...

    async def put_state(self, key: str, value: str) -> None: ...


class LedgerStore(Protocol):
    """The append-only credit ledger."""

    async def last_reservation(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> float: ...

    async def recent(self, guild_id: int, user_id: int, limit: int = 5) -> list[LedgerEntry]: ...

    async def for_job(self, job_id: int) -> list[LedgerEntry]: ...


class ApprovalStore(Protocol):
    """The moderators' queue: one request per held job, decided once."""

    async def create(
        self,
        job_id: int,
        guild_id: int,
        user_id: int,
        *,
        now: float,
        expires_at: float,
        tx: UnitOfWork | None = None,
    ) -> ApprovalRequest: ...

    async def get(self, job_id: int) -> ApprovalRequest | None: ...

    async def decide(
        self,
        job_id: int,
        decision: ApprovalDecision,
        *,
        by: int | None,
        now: float,
        reason: str = "",
        tx: UnitOfWork | None = None,
    ) -> DecisionResult: ...


class AuditStore(Protocol):
    """The audit log: rows appended, pages read newest first."""

    async def append(
        self,
        guild_id: int,
        action: AuditAction,
        *,
        actor_id: int | None,
        now: float,
        job_id: int | None = None,
        target_user_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        tx: UnitOfWork | None = None,
    ) -> int: ...

    async def page(
        self,
        guild_id: int,
        member: int | None = None,
        action: AuditAction | None = None,
        before_id: int | None = None,
        limit: int = 10,
        after_id: int | None = None,
    ) -> AuditPage: ...


if TYPE_CHECKING:
    from storage.db import Database

    def _sqlite_implements_the_port(db: Database) -> None:
        """Type-checked only: the SQLite engine is one implementation of every interface."""
        from storage.approvals import ApprovalRepository
        from storage.audit import AuditRepository
        from storage.jobs import JobRepository
        from storage.ledger import LedgerRepository

        transactions: Transactions = db
        jobs: JobStore = JobRepository(db)
        ledger: LedgerStore = LedgerRepository(db)
        approvals: ApprovalStore = ApprovalRepository(db)
        audit: AuditStore = AuditRepository(db)
        del transactions, jobs, ledger, approvals, audit
