"""The storage port: what the core may know of storage, and nothing more.

The core (``hailuo/``) works with repositories and units of work, never with a
connection, a ``Tx``, SQL or SQLite's behaviour. A unit of work is opened by
``Transactions.transaction()``; every repository call handed it commits with
the others or not at all, and units of work are serialised against each other
(the SQLite engine: one connection, one lock, ``BEGIN IMMEDIATE``; the
PostgreSQL engine: a database advisory lock taken first, across processes), so
a check-then-write such as "credits left, then reserve" is atomic. A repository
call made without one runs in a unit of work of its own (or, for a read, on
the committed state).

The repository interfaces below are what the core calls; the repository classes
in this package implement them on either engine (``storage.db`` for SQLite,
``storage.postgres`` for PostgreSQL; ``mypy`` checks both:
``_sqlite_implements_the_port``, ``_postgresql_implements_the_port``), and
``storage.opening.open_storage`` picks one; nothing above ``storage`` changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

# The moderation repositories' half of the port, re-exported: their home is here.
from storage.moderation_port import ApprovalStore as ApprovalStore
from storage.moderation_port import AuditStore as AuditStore
from storage.moderation_port import BlocklistStore as BlocklistStore
from storage.moderation_port import BlockStore as BlockStore
from storage.moderation_port import ModerationSettingsStore as ModerationSettingsStore
from storage.moderation_port import StrikeStore as StrikeStore

if TYPE_CHECKING:
    from hailuo.model.job import Job, NewJob, StoredImage
    from hailuo.model.spec import JobSpec
    from hailuo.model.status import JobStatus
    from storage.delivery import DeliveryPrefsStore
    from storage.guilds import GuildConfig, GuildSettings, PricedJob, PriceKey
    from storage.ledger import LedgerEntry, LedgerEntryKind, PeriodUsage, SpendRow
    from storage.limits import SharedLimit

#: Work to do once a unit of work has committed (never if it rolled back).
AfterCommit = Callable[[], Awaitable[None]]


class PollRecord(NamedTuple):
    """A status query that found its task still running: its schedule changes, and its
    state when the provider started it.

    Written only if the job is still in ``status`` (a guarded write, as every change)."""

    job_id: int
    status: str
    to_status: str  # the same, or the next state (no settlement: submitted -> running)
    polls: int
    next_poll_at: float
    progress: int | None  # None: unchanged
    now: float


class UnitOfWork(Protocol):
    """One atomic piece of storage work; the core passes it on to repository calls."""

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once this unit of work committed (never if it rolls back)."""
        ...


class Transactions(Protocol):
    """Where units of work come from (either engine)."""

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Open a unit of work: committed when the block ends, rolled back if it raises."""
        ...


class JobStore(Protocol):
    """The jobs: created with their reservation, moved by guarded transitions only."""

    async def create(self, uow: UnitOfWork, new: NewJob, now: float) -> int: ...

    async def add(self, uow: UnitOfWork, new: NewJob, now: float) -> Job:
        """``create``, answering the job as stored (from the insert: no second read)."""

    async def get(self, job_id: int, tx: UnitOfWork | None = None) -> Job | None: ...

    async def by_interaction(self, interaction_id: int) -> Job | None: ...

    async def images(self, job_id: int) -> dict[str, StoredImage]: ...

    async def sweep_images(self, before: float) -> int: ...

    async def open_jobs(self) -> list[Job]: ...

    async def next_due(self, after: float) -> float | None: ...

    async def record_polls(self, records: Sequence[PollRecord]) -> set[int]: ...

    async def set_card_seen(self, job_id: int, seen: str) -> None: ...

    async def set_cards_seen(self, seen: Sequence[tuple[int, str]]) -> set[int]: ...

    async def durations(self) -> dict[str, list[float]]: ...

    async def put_duration(self, key: str, recent: list[float], now: float) -> None: ...

    async def by_status(self, status: JobStatus) -> list[Job]: ...

    async def ended_without_card(self, since: float) -> list[Job]: ...

    async def by_task(self, provider: str, task_id: str) -> Job | None: ...
    async def recent_runs(self, limit: int) -> list[tuple[JobSpec, float]]: ...

    async def recent_for_member(
        self, guild_id: int, user_id: int, limit: int = 10
    ) -> list[Job]: ...

    async def count_by_status(self) -> dict[str, int]: ...

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
    ) -> Job: ...

    async def update(self, job: Job, now: float, **updates: Any) -> Job: ...

    async def get_state(self, key: str) -> str | None: ...

    async def put_state(self, key: str, value: str) -> None: ...

    async def swap_state(self, key: str, expected: str | None, value: str) -> bool: ...


class LeaseStore(Protocol):
    """Which process works on a job's step now (``storage.leases``): several share one queue."""

    async def claim_due(
        self,
        holder: str,
        now: float,
        until: float,
        limit: int,
        skip: Collection[str] = ...,
        busy: Collection[int] = ...,
    ) -> list[Job]: ...

    async def claim(self, job_id: int, holder: str, now: float, until: float) -> Job | None: ...

    async def renew(self, job_id: int, holder: str, until: float) -> bool: ...

    async def ended(self, job_id: int) -> bool: ...

    async def release(self, job_id: int, holder: str) -> None: ...

    async def release_many(self, job_ids: list[int], holder: str) -> None: ...

    async def holders(self) -> list[str]: ...

    async def release_holder(self, holder: str) -> int: ...


class ProviderLimitStore(Protocol):
    """Each provider's limiter and breaker state, shared by every process (compare-and-set)."""

    async def all(self) -> dict[str, SharedLimit]: ...

    async def get(self, provider: str) -> SharedLimit | None: ...

    async def create(self, provider: str, state: str, now: float) -> SharedLimit: ...

    async def save(self, provider: str, version: int, state: str, now: float) -> bool: ...


class LedgerStore(Protocol):
    """The append-only credit ledger and the sums read from it."""

    async def append(
        self,
        tx: UnitOfWork,
        *,
        guild_id: int,
        user_id: int,
        job_id: int | None,
        kind: LedgerEntryKind,
        delta: int,
        period: str,
        actor_id: int | None,
        reason: str,
        now: float,
    ) -> int: ...

    async def usage(
        self, guild_id: int, user_id: int, period: str, tx: UnitOfWork | None = None
    ) -> PeriodUsage: ...

    async def last_reservation(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> float: ...

    async def guild_spend(
        self, guild_id: int, start: float, end: float, tx: UnitOfWork | None = None
    ) -> int: ...

    async def spend_rows(self, guild_id: int, start: float, end: float) -> list[SpendRow]: ...

    async def recent(self, guild_id: int, user_id: int, limit: int = 5) -> list[LedgerEntry]: ...

    async def for_job(self, job_id: int) -> list[LedgerEntry]: ...


class GuildStore(Protocol):
    """Each server's money settings, tiers, costs and budget notices; in-flight counts."""

    async def config(self, guild_id: int, tx: UnitOfWork | None = None) -> GuildConfig: ...

    async def update_settings(
        self, guild_id: int, *, actor_id: int | None, now: float, **values: Any
    ) -> GuildSettings: ...

    async def set_tier(
        self, guild_id: int, role_id: int, credits: int | None, *, actor_id: int | None, now: float
    ) -> None: ...

    async def set_cost(
        self,
        guild_id: int,
        key: tuple[str, str, int],
        credits: int | None,
        *,
        actor_id: int | None,
        now: float,
    ) -> None: ...

    async def set_price(
        self, guild_id: int, key: PriceKey, micros: int | None, *, actor_id: int | None, now: float
    ) -> None: ...

    async def priced_jobs(
        self, guild_id: int, start: float, end: float, tx: UnitOfWork | None = None
    ) -> list[PricedJob]: ...

    async def in_flight(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> tuple[int, int]: ...

    async def active(
        self, guild_id: int, user_id: int, tx: UnitOfWork | None = None
    ) -> tuple[int, int]: ...

    async def record_notice(
        self,
        tx: UnitOfWork,
        guild_id: int,
        *,
        scope: str,
        period: str,
        threshold: int,
        spent: int,
        budget: int,
        now: float,
    ) -> bool: ...


class Storage(Transactions, Protocol):
    """Everything the core keeps: units of work and one repository of each kind."""

    @property
    def jobs(self) -> JobStore: ...

    @property
    def ledger(self) -> LedgerStore: ...

    @property
    def leases(self) -> LeaseStore: ...

    @property
    def limits(self) -> ProviderLimitStore: ...

    @property
    def guilds(self) -> GuildStore: ...

    @property
    def approvals(self) -> ApprovalStore: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def blocklist(self) -> BlocklistStore: ...

    @property
    def moderation(self) -> ModerationSettingsStore: ...

    @property
    def blocks(self) -> BlockStore: ...

    #: Told of each audit row once its unit of work committed (``storage.audit``).
    audit_sink: Callable[[Any], Awaitable[None]] | None

    @property
    def strikes(self) -> StrikeStore: ...

    @property
    def delivery(self) -> DeliveryPrefsStore: ...


if TYPE_CHECKING:
    from storage.db import Database

    def _sqlite_implements_the_port(db: Database) -> None:
        """Type-checked only: the SQLite engine implements the whole port."""
        storage: Storage = db
        del storage

    from storage.postgres import PostgresDatabase

    def _postgresql_implements_the_port(db: PostgresDatabase) -> None:
        """Type-checked only: the PostgreSQL engine implements the whole port."""
        storage: Storage = db
        del storage
