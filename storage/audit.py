"""The append-only audit log: who approved, rejected, blocked, granted or changed what.

Triggers in the schema refuse any UPDATE or DELETE. A change and its audit
row are written in the same transaction: repositories that change moderation
state call :func:`append_audit` with their own ``Tx``, and other features
(the money commands' grant and reset) do the same or use
``AuditRepository.append``. ``actor_id`` ``None`` is the bot itself.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.db import Database, Tx


class AuditAction(enum.StrEnum):
    """Stored words (a ``CHECK`` lists them): never renamed or reused."""

    APPROVE = "approve"
    REJECT = "reject"
    EXPIRE = "expire"
    BLOCK = "block"
    UNBLOCK = "unblock"
    STRIKE = "strike"
    GRANT = "grant"
    RESET = "reset"
    SETTING_CHANGED = "setting_changed"
    VIDEO_DELETED = "video_deleted"
    CANCEL = "cancel"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    guild_id: int
    actor_id: int | None
    action: AuditAction
    job_id: int | None
    target_user_id: int | None
    details: Mapping[str, Any]
    created_at: float


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first; ``next_before_id`` asks for the next (older) page, None at the end."""

    entries: tuple[AuditEntry, ...]
    next_before_id: int | None


INSERT_AUDIT = """
INSERT INTO audit (guild_id, actor_id, action, job_id, target_user_id, details, created_at)
VALUES (:guild, :actor, :action, :job, :target, :details, :now)
"""
# ``member`` matches the member acted upon or the member who acted.
PAGE_AUDIT = """
SELECT * FROM audit
WHERE guild_id = :guild
  AND (:member IS NULL OR target_user_id = :member OR actor_id = :member)
  AND (:action IS NULL OR action = :action)
  AND (:before IS NULL OR id < :before)
ORDER BY id DESC
LIMIT :limit
"""


async def append_audit(
    tx: Tx,
    *,
    guild_id: int,
    action: AuditAction,
    actor_id: int | None,
    now: float,
    job_id: int | None = None,
    target_user_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    return await tx.insert(
        INSERT_AUDIT,
        {
            "guild": guild_id,
            "actor": actor_id,
            "action": action.value,
            "job": job_id,
            "target": target_user_id,
            "details": json.dumps(dict(details or {}), sort_keys=True, default=_json_default),
            "now": now,
        },
    )


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        tx: Tx | None = None,
    ) -> int:
        """Append one entry (inside ``tx`` when given, so it commits with the change)."""
        params: dict[str, Any] = {
            "guild_id": guild_id,
            "action": action,
            "actor_id": actor_id,
            "now": now,
            "job_id": job_id,
            "target_user_id": target_user_id,
            "details": details,
        }
        if tx is not None:
            return await append_audit(tx, **params)
        async with self.db.transaction() as own:
            return await append_audit(own, **params)

    async def page(
        self,
        guild_id: int,
        member: int | None = None,
        action: AuditAction | None = None,
        before_id: int | None = None,
        limit: int = 10,
    ) -> AuditPage:
        """One page, newest first, optionally about one member and/or of one action."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        rows = await self.db.fetch_all(
            PAGE_AUDIT,
            {
                "guild": guild_id,
                "member": member,
                "action": action.value if action is not None else None,
                "before": before_id,
                "limit": limit + 1,
            },
        )
        entries = tuple(_entry(row) for row in rows[:limit])
        more = len(rows) > limit
        return AuditPage(entries, entries[-1].id if more and entries else None)


def _entry(row: Any) -> AuditEntry:
    data = dict(row)
    data["action"] = AuditAction(data["action"])
    data["details"] = json.loads(data["details"])
    return AuditEntry(**data)


def _json_default(value: object) -> object:
    """Sets and enums, as the moderation settings hold them, in a stable JSON form."""
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
