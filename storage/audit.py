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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from storage.engine import Engine, statements
from storage.engine import Statements as Tx
from storage.port import Storage, UnitOfWork


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
    """Entries newest first; ``next_before_id`` asks for the next (older) page, None at the end;
    ``newer_after_id`` for the newer page, None when this page is the newest."""

    entries: tuple[AuditEntry, ...]
    next_before_id: int | None
    newer_after_id: int | None = None


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
# The page just newer than ``:after``: oldest first (the caller turns it round).
PAGE_AUDIT_AFTER = """
SELECT * FROM audit
WHERE guild_id = :guild
  AND (:member IS NULL OR target_user_id = :member OR actor_id = :member)
  AND (:action IS NULL OR action = :action)
  AND id > :after
ORDER BY id ASC
LIMIT :limit
"""


#: Told of each audit row once its transaction committed (``hailuo.moderation.audit`` mirrors it).
AuditSink = Callable[[AuditEntry], Awaitable[None]]


def set_audit_sink(db: Storage, sink: AuditSink | None) -> None:
    """Have ``sink`` told of every audit row committed through ``db`` (None: nobody)."""
    db.audit_sink = sink


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
    """Append one row in ``tx``; the database's audit sink hears of it after the commit."""
    text = json.dumps(dict(details or {}), sort_keys=True, default=_json_default)
    row_id = await tx.insert(
        INSERT_AUDIT,
        {
            "guild": guild_id,
            "actor": actor_id,
            "action": action.value,
            "job": job_id,
            "target": target_user_id,
            "details": text,
            "now": now,
        },
    )
    sink = tx.db.audit_sink if tx.db is not None else None
    if sink is not None:
        entry = AuditEntry(
            row_id, guild_id, actor_id, action, job_id, target_user_id, json.loads(text), now
        )
        tx.after_commit(lambda: sink(entry))
    return row_id


class AuditRepository:
    def __init__(self, db: Engine) -> None:
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
        tx: UnitOfWork | None = None,
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
            return await append_audit(statements(tx), **params)
        async with self.db.transaction() as own:
            return await append_audit(own, **params)

    async def page(
        self,
        guild_id: int,
        member: int | None = None,
        action: AuditAction | None = None,
        before_id: int | None = None,
        limit: int = 10,
        after_id: int | None = None,
    ) -> AuditPage:
        """One page, newest first, optionally about one member and/or of one action.

        ``before_id`` pages towards older entries; ``after_id`` (instead) to newer ones.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params = {
            "guild": guild_id,
            "member": member,
            "action": action.value if action is not None else None,
            "limit": limit + 1,
        }
        if after_id is not None:
            rows = await self.db.fetch_all(PAGE_AUDIT_AFTER, {**params, "after": after_id})
            entries = tuple(_entry(row) for row in reversed(rows[:limit]))
            newer = entries[0].id if len(rows) > limit else None
            return AuditPage(entries, entries[-1].id if entries else None, newer)
        rows = await self.db.fetch_all(PAGE_AUDIT, {**params, "before": before_id})
        entries = tuple(_entry(row) for row in rows[:limit])
        more = len(rows) > limit
        newer = entries[0].id if before_id is not None and entries else None
        return AuditPage(entries, entries[-1].id if more and entries else None, newer)


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
