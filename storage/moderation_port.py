"""The storage port, its moderation half: approvals, audit, blocklist, settings, blocks.

Split from ``storage.port`` (which re-exports every name here) only to keep modules
small; the rules of the port are written there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hailuo.model.moderation import Block, ModerationSettings, SettingsChange
    from storage.approvals import ApprovalDecision, ApprovalRequest, DecisionResult
    from storage.audit import AuditAction, AuditPage
    from storage.blocklist import BlocklistEntry, BlocklistKind
    from storage.port import UnitOfWork


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

    async def set_mod_message(
        self, job_id: int, channel_id: int, message_id: int, tx: UnitOfWork | None = None
    ) -> None: ...

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

    async def pending(self, guild_id: int) -> tuple[ApprovalRequest, ...]: ...

    async def due(self, now: float) -> tuple[ApprovalRequest, ...]: ...

    async def unannounced(self) -> tuple[ApprovalRequest, ...]: ...


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


class BlocklistStore(Protocol):
    """The server's blocklist entries (validated and audited by the core)."""

    async def entries(
        self, guild_id: int, tx: UnitOfWork | None = None
    ) -> tuple[BlocklistEntry, ...]: ...

    async def add(
        self,
        guild_id: int,
        kind: BlocklistKind,
        text: str,
        *,
        label: str = "",
        added_by: int | None,
        now: float,
        tx: UnitOfWork | None = None,
    ) -> BlocklistEntry: ...

    async def remove(
        self, guild_id: int, entry_id: int, *, tx: UnitOfWork | None = None
    ) -> BlocklistEntry | None: ...


class ModerationSettingsStore(Protocol):
    """Each server's moderation settings."""

    async def get(self, guild_id: int, tx: UnitOfWork | None = None) -> ModerationSettings: ...

    async def version(self, guild_id: int, tx: UnitOfWork | None = None) -> int:
        """How often the server's settings and blocklist changed: the same number, the same
        settings and entries."""
        ...

    async def update(
        self,
        guild_id: int,
        changes: Mapping[str, Any],
        *,
        actor_id: int | None,
        now: float,
        tx: UnitOfWork | None = None,
    ) -> SettingsChange: ...


class BlockStore(Protocol):
    """Member blocks: one open block per member at most."""

    async def active(
        self, guild_id: int, user_id: int, now: float, tx: UnitOfWork | None = None
    ) -> Block | None: ...

    async def is_blocked(
        self, guild_id: int, user_id: int, now: float, tx: UnitOfWork | None = None
    ) -> bool: ...

    async def list(self, guild_id: int, now: float) -> tuple[Block, ...]: ...

    async def block(
        self,
        guild_id: int,
        user_id: int,
        *,
        by: int | None,
        reason: str,
        now: float,
        until: float | None = None,
        tx: UnitOfWork | None = None,
    ) -> Block: ...

    async def unblock(
        self,
        guild_id: int,
        user_id: int,
        *,
        by: int | None,
        now: float,
        reason: str = "",
        tx: UnitOfWork | None = None,
    ) -> Block | None: ...

    async def strikes_reset_at(
        self, guild_id: int, user_id: int, now: float, tx: UnitOfWork | None = None
    ) -> float | None: ...


class StrikeStore(Protocol):
    """Provider refusals counted against a member."""

    async def add(
        self,
        guild_id: int,
        user_id: int,
        *,
        job_id: int | None,
        rule: str,
        now: float,
        tx: UnitOfWork | None = None,
    ) -> bool: ...

    async def count_since(
        self, guild_id: int, user_id: int, since: float, tx: UnitOfWork | None = None
    ) -> int: ...
