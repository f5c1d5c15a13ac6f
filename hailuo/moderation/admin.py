"""The admins' side of moderation, one service for ``/hailuo-admin``: settings, blocklist, log.

The cogs call it and never a repository. It owns the blocklist's rules: an
entry is validated (``validate_entry``: length, a pattern that compiles and
cannot run away) and counted against the server's caps (``check_room``) before
it is stored; the same entry twice is the one already there. Each change to the
blocklist writes its ``setting_changed`` audit row in the same transaction as
the change, through ``AuditLog`` (mirrored to the log channel once committed).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from hailuo.clock import Clock
from hailuo.model.errors import UserInputError
from hailuo.model.moderation import ApprovalMode, ModerationSettings, SettingsChange
from hailuo.moderation.audit import AuditLog
from hailuo.moderation.screening import check_room, validate_entry
from storage.audit import AuditAction, AuditPage
from storage.blocklist import BlocklistEntry, BlocklistKind
from storage.port import ModerationSettingsStore, Storage


class ModerationAdmin:
    """Moderation settings, the blocklist and the audit log, as the admins change and read them."""

    def __init__(
        self,
        db: Storage,
        *,
        settings: ModerationSettingsStore,
        audit: AuditLog,
        clock: Clock,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self._settings = settings
        self._entries = db.blocklist
        self.audit = audit
        self.clock = clock
        #: Told of each server whose settings or blocklist changed (``Gatekeeper.forget``).
        self._on_change = on_change or (lambda guild_id: None)

    async def settings(self, guild_id: int) -> ModerationSettings:
        """The server's moderation settings (the environment's defaults where it set none)."""
        return await self._settings.get(guild_id)

    async def update(
        self, guild_id: int, changes: Mapping[str, Any], *, actor_id: int
    ) -> SettingsChange:
        """Change some settings: one ``setting_changed`` row lists each (old, new).

        Approval needs a moderators' channel (the log channel): a request holds the
        member's image before any moderation, and is never posted where every member
        reads. Turning approval on without one, or clearing it while approval is on,
        is refused with the rule.
        """
        current = await self._settings.get(guild_id)
        mode = ApprovalMode(changes.get("approval_mode", current.approval_mode))
        channel = changes.get("log_channel_id", current.log_channel_id)
        if mode is not ApprovalMode.OFF and channel is None:
            raise UserInputError("moderation.approval_needs_channel")
        try:
            return await self._settings.update(
                guild_id, changes, actor_id=actor_id, now=self.clock()
            )
        finally:
            self._on_change(guild_id)

    async def entries(self, guild_id: int) -> tuple[BlocklistEntry, ...]:
        """The server's blocklist, oldest first."""
        return await self._entries.entries(guild_id)

    async def add_entry(
        self, guild_id: int, kind: BlocklistKind, text: str, *, label: str, actor_id: int
    ) -> BlocklistEntry:
        """Store one entry once (validated, within the caps); the same entry again is kept."""
        stored = validate_entry(kind, text)
        entries = await self._entries.entries(guild_id)
        existing = next((e for e in entries if e.kind is kind and e.text == stored), None)
        if existing is not None:
            return existing
        check_room(kind, entries)
        label = label.strip()
        now = self.clock()
        async with self._changing(guild_id), self.db.transaction() as tx:
            entry = await self._entries.add(
                guild_id, kind, stored, label=label, added_by=actor_id, now=now, tx=tx
            )
            await self.audit.record(
                guild_id,
                AuditAction.SETTING_CHANGED,
                actor_id=actor_id,
                details={"blocklist_added": {"id": entry.id, "kind": kind.value, "label": label}},
                tx=tx,
                now=now,
            )
        return entry

    async def remove_entry(self, guild_id: int, entry_id: int, *, actor_id: int) -> BlocklistEntry:
        """Delete one entry; ``UserInputError`` when the server has no such entry."""
        now = self.clock()
        async with self._changing(guild_id), self.db.transaction() as tx:
            entry = await self._entries.remove(guild_id, entry_id, tx=tx)
            if entry is None:
                raise UserInputError("blocklist.missing", id=entry_id)
            await self.audit.record(
                guild_id,
                AuditAction.SETTING_CHANGED,
                actor_id=actor_id,
                details={
                    "blocklist_removed": {"id": entry.id, "kind": entry.kind, "label": entry.label}
                },
                tx=tx,
                now=now,
            )
        return entry

    @contextlib.asynccontextmanager
    async def _changing(self, guild_id: int) -> AsyncIterator[None]:
        """The server's blocklist changes inside: what was known of it is dropped after."""
        try:
            yield
        finally:
            self._on_change(guild_id)

    async def audit_page(
        self,
        guild_id: int,
        *,
        member: int | None = None,
        action: AuditAction | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 10,
    ) -> AuditPage:
        """One page of the server's log, newest first."""
        return await self.audit.page(
            guild_id,
            member=member,
            action=action,
            before_id=before_id,
            after_id=after_id,
            limit=limit,
        )
