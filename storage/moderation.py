"""Moderation state: server settings, strikes and member blocks.

This module is the one home of member blocks: the moderators' commands, the
strike threshold and the money feature's block/unblock commands all use
``BlockRepository``. Every change writes its audit row in the same
transaction; a write method takes an optional ``tx`` so a caller can put it
in a larger transaction (a job transition, for instance).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from hailuo.model.moderation import (
    ID_SETS,
    SETTING_NAMES,
    Block,
    ModerationSettings,
    SettingsChange,
)
from storage.audit import AuditAction, append_audit
from storage.engine import Engine, reading, within
from storage.port import UnitOfWork

SELECT_SETTINGS = "SELECT * FROM moderation_settings WHERE guild_id = :guild_id"
#: Moved by every change of the server's settings or blocklist (triggers, migration 012).
SELECT_VERSION = "SELECT version FROM moderation_versions WHERE guild_id = :guild_id"
UPSERT_SETTINGS = """
INSERT INTO moderation_settings (
    guild_id, allowed_channel_ids, allowed_role_ids, moderator_role_id, log_channel_id,
    approval_mode, new_member_days, trusted_role_ids, approval_expiry_seconds,
    strike_threshold, strike_window_seconds, updated_at)
VALUES (
    :guild_id, :allowed_channel_ids, :allowed_role_ids, :moderator_role_id, :log_channel_id,
    :approval_mode, :new_member_days, :trusted_role_ids, :approval_expiry_seconds,
    :strike_threshold, :strike_window_seconds, :now)
ON CONFLICT (guild_id) DO UPDATE SET
    allowed_channel_ids = excluded.allowed_channel_ids,
    allowed_role_ids = excluded.allowed_role_ids,
    moderator_role_id = excluded.moderator_role_id,
    log_channel_id = excluded.log_channel_id,
    approval_mode = excluded.approval_mode,
    new_member_days = excluded.new_member_days,
    trusted_role_ids = excluded.trusted_role_ids,
    approval_expiry_seconds = excluded.approval_expiry_seconds,
    strike_threshold = excluded.strike_threshold,
    strike_window_seconds = excluded.strike_window_seconds,
    updated_at = excluded.updated_at
"""
INSERT_BLOCK = """
INSERT INTO blocks (guild_id, user_id, blocked_by, reason, created_at, until)
VALUES (:guild, :user, :by, :reason, :now, :until)
"""
SELECT_OPEN_BLOCK = """
SELECT * FROM blocks WHERE guild_id = :guild AND user_id = :user AND lifted_at IS NULL
"""
LIFT_BLOCK = "UPDATE blocks SET lifted_by = :by, lifted_at = :now WHERE id = :id"
SELECT_ACTIVE_BLOCKS = """
SELECT * FROM blocks WHERE guild_id = :guild AND lifted_at IS NULL
AND (until IS NULL OR until > :now) ORDER BY id
"""
# A block spends the strikes before it: they count again only after it ends
# (lifted, or its ``until`` passed).
STRIKES_RESET_AT = """
SELECT MAX(COALESCE(lifted_at, CASE WHEN until <= :now THEN until END, created_at))
FROM blocks WHERE guild_id = :guild AND user_id = :user
"""
INSERT_STRIKE = """
INSERT INTO strikes (guild_id, user_id, job_id, rule, created_at)
VALUES (:guild, :user, :job, :rule, :now)
ON CONFLICT (job_id) WHERE job_id IS NOT NULL DO NOTHING
"""
COUNT_STRIKES_SINCE = """
SELECT COUNT(*) FROM strikes WHERE guild_id = :guild AND user_id = :user AND created_at > :since
"""


class ModerationSettingsRepository:
    """``defaults`` is what a server that never changed a setting gets (the owner's env)."""

    def __init__(self, db: Engine, defaults: ModerationSettings | None = None) -> None:
        self.db = db
        self.defaults = defaults

    async def get(self, guild_id: int, tx: UnitOfWork | None = None) -> ModerationSettings:
        """The server's settings; the defaults when it never changed one."""
        row = await reading(self.db, tx).fetch_one(SELECT_SETTINGS, {"guild_id": guild_id})
        if row is None:
            if self.defaults is None:
                return ModerationSettings(guild_id)
            return dataclasses.replace(self.defaults, guild_id=guild_id)
        data = dict(row)
        del data["updated_at"]
        for name in ID_SETS:
            data[name] = frozenset(json.loads(data[name]))
        return ModerationSettings(**data)

    async def version(self, guild_id: int, tx: UnitOfWork | None = None) -> int:
        """How often the server's settings and blocklist changed (0: never)."""
        row = await reading(self.db, tx).fetch_one(SELECT_VERSION, {"guild_id": guild_id})
        return int(row[0]) if row else 0

    async def update(
        self,
        guild_id: int,
        changes: Mapping[str, Any],
        *,
        actor_id: int | None,
        now: float,
        tx: UnitOfWork | None = None,
    ) -> SettingsChange:
        """Change some settings; one ``setting_changed`` audit row lists each (old, new).

        Nothing is written (and ``changed`` is empty) when no value differs.
        Raises ``UserInputError`` (``moderation.setting_too_small`` or ``…setting_choice``).
        """
        unknown = set(changes) - SETTING_NAMES
        if unknown:
            raise ValueError(f"not a moderation setting: {sorted(unknown)}")
        async with within(self.db, tx) as own:
            old = await self.get(guild_id, own)
            new = dataclasses.replace(old, **changes)
            changed = {
                name: (getattr(old, name), getattr(new, name))
                for name in sorted(SETTING_NAMES)
                if getattr(old, name) != getattr(new, name)
            }
            if changed:
                await own.execute(UPSERT_SETTINGS, {**_settings_params(new), "now": now})
                await append_audit(
                    own,
                    guild_id=guild_id,
                    action=AuditAction.SETTING_CHANGED,
                    actor_id=actor_id,
                    now=now,
                    details={k: {"old": o, "new": n} for k, (o, n) in changed.items()},
                )
        return SettingsChange(old, new, changed)


def _settings_params(settings: ModerationSettings) -> dict[str, Any]:
    params = dataclasses.asdict(settings)
    for name in ID_SETS:
        params[name] = json.dumps(sorted(params[name]))
    params["approval_mode"] = settings.approval_mode.value
    return params


class BlockRepository:
    """Members blocked from generating in a server: block, unblock, is_blocked, list."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    async def active(
        self, guild_id: int, user_id: int, now: float, tx: UnitOfWork | None = None
    ) -> Block | None:
        row = await reading(self.db, tx).fetch_one(
            SELECT_OPEN_BLOCK, {"guild": guild_id, "user": user_id}
        )
        block = _block(row) if row is not None else None
        return block if block is not None and block.active(now) else None

    async def is_blocked(
        self, guild_id: int, user_id: int, now: float, tx: UnitOfWork | None = None
    ) -> bool:
        return await self.active(guild_id, user_id, now, tx) is not None

    async def list(self, guild_id: int, now: float) -> tuple[Block, ...]:
        """The server's active blocks, oldest first."""
        rows = await self.db.fetch_all(SELECT_ACTIVE_BLOCKS, {"guild": guild_id, "now": now})
        return tuple(_block(r) for r in rows)

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
    ) -> Block:
        """Block the member (replacing any earlier block, which is lifted); audited."""
        if until is not None and until <= now:
            raise ValueError("a block must end after it starts")
        async with within(self.db, tx) as own:
            params = {"guild": guild_id, "user": user_id}
            previous = await own.fetch_one(SELECT_OPEN_BLOCK, params)
            if previous is not None:
                await own.execute(LIFT_BLOCK, {"id": previous["id"], "by": by, "now": now})
            block_id = await own.insert(
                INSERT_BLOCK, {**params, "by": by, "reason": reason, "now": now, "until": until}
            )
            await append_audit(
                own,
                guild_id=guild_id,
                action=AuditAction.BLOCK,
                actor_id=by,
                now=now,
                target_user_id=user_id,
                details={
                    "block_id": block_id,
                    "reason": reason,
                    "until": until,
                    "replaces": previous["id"] if previous is not None else None,
                },
            )
            row = await own.fetch_one(SELECT_OPEN_BLOCK, params)
        assert row is not None
        return _block(row)

    async def unblock(
        self,
        guild_id: int,
        user_id: int,
        *,
        by: int | None,
        now: float,
        reason: str = "",
        tx: UnitOfWork | None = None,
    ) -> Block | None:
        """Lift the member's active block and return it; ``None`` (nothing written) if none."""
        async with within(self.db, tx) as own:
            block = await self.active(guild_id, user_id, now, own)
            if block is None:
                return None
            await own.execute(LIFT_BLOCK, {"id": block.id, "by": by, "now": now})
            await append_audit(
                own,
                guild_id=guild_id,
                action=AuditAction.UNBLOCK,
                actor_id=by,
                now=now,
                target_user_id=user_id,
                details={"block_id": block.id, "reason": reason},
            )
        return dataclasses.replace(block, lifted_by=by, lifted_at=now)

    async def strikes_reset_at(
        self, guild_id: int, user_id: int, now: float, tx: UnitOfWork | None = None
    ) -> float | None:
        """When the member's latest block ended, or began if it still runs; None if never blocked.

        Strikes up to then are spent: they led to that block, or fell during it.
        """
        params = {"guild": guild_id, "user": user_id, "now": now}
        row = await reading(self.db, tx).fetch_one(STRIKES_RESET_AT, params)
        return float(row[0]) if row is not None and row[0] is not None else None


def _block(row: Any) -> Block:
    return Block(**dict(row))


class StrikeRepository:
    def __init__(self, db: Engine) -> None:
        self.db = db

    async def add(
        self,
        guild_id: int,
        user_id: int,
        *,
        job_id: int | None,
        rule: str,
        now: float,
        tx: UnitOfWork | None = None,
    ) -> bool:
        """Record a strike (audited); ``False`` when this job already has one."""
        async with within(self.db, tx) as own:
            params = {"guild": guild_id, "user": user_id, "job": job_id, "rule": rule, "now": now}
            if not await own.execute(INSERT_STRIKE, params):
                return False
            await append_audit(
                own,
                guild_id=guild_id,
                action=AuditAction.STRIKE,
                actor_id=None,
                now=now,
                job_id=job_id,
                target_user_id=user_id,
                details={"rule": rule},
            )
        return True

    async def count_since(
        self, guild_id: int, user_id: int, since: float, tx: UnitOfWork | None = None
    ) -> int:
        """Strikes strictly after ``since``."""
        params = {"guild": guild_id, "user": user_id, "since": since}
        row = await reading(self.db, tx).fetch_one(COUNT_STRIKES_SINCE, params)
        return int(row[0]) if row is not None else 0
