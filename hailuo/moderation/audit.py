"""The audit service: append a moderation or admin action, then mirror it to the log channel.

Every audit row, whoever writes it (this service, the moderation and blocklist
repositories, the approval queue, the money commands), is mirrored once its
transaction has committed: the service registers itself as the database's
audit sink (``storage.audit.set_audit_sink``), and ``append_audit`` hands each
committed row to it. A row in a transaction that rolls back is never mirrored.
The mirror goes to the server's log channel (``ModerationSettings.log_channel_id``)
when one is set, through ``AuditNotifier.log_event``, which never raises. Mirrors
are posted in the background, one at a time in commit order, so an admin's
answer or a job's transition never waits on the chat service (nor its rate
limits); ``drained()`` waits for those on their way (tests, shutdown).

Use ``record`` for a new row::

    await audit.record(guild_id, AuditAction.APPROVE, actor_id=mod_id, job_id=job.id,
                       target_user_id=job.user_id, details={...}, tx=tx)

With ``tx`` the row commits with the caller's transaction and is mirrored once it
has; without it, in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from hailuo.clock import Clock, system_clock
from hailuo.jobs.notify import AuditNotifier
from storage.audit import (
    AuditAction,
    AuditEntry,
    AuditPage,
    set_audit_sink,
)
from storage.port import Storage, UnitOfWork

log = logging.getLogger(__name__)

__all__ = ["AuditAction", "AuditEntry", "AuditLog", "AuditPage"]


class AuditLog:
    """Append audit rows and mirror every committed one to the server's log channel."""

    def __init__(
        self, db: Storage, notifier: AuditNotifier, *, clock: Clock = system_clock
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.clock = clock
        self.repo = db.audit
        self.settings = db.moderation
        self._pending: deque[AuditEntry] = deque()
        self._poster: asyncio.Task[None] | None = None
        set_audit_sink(db, self._committed)

    def close(self) -> None:
        """Stop mirroring (rows are still appended)."""
        set_audit_sink(self.db, None)

    async def record(
        self,
        guild_id: int,
        action: AuditAction,
        *,
        actor_id: int | None,
        job_id: int | None = None,
        target_user_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        tx: UnitOfWork | None = None,
        now: float | None = None,
    ) -> int:
        """Append one row (in ``tx`` when given) and return its id; mirrored after the commit.

        ``actor_id`` None is the bot itself; ``now`` defaults to the service's clock.
        """
        return await self.repo.append(
            guild_id,
            action,
            actor_id=actor_id,
            now=self.clock() if now is None else now,
            job_id=job_id,
            target_user_id=target_user_id,
            details=details,
            tx=tx,
        )

    async def page(
        self,
        guild_id: int,
        *,
        member: int | None = None,
        action: AuditAction | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 10,
    ) -> AuditPage:
        """One page of the server's log, newest first (``member``: acted upon or acting);
        ``before_id`` pages to older entries, ``after_id`` to newer ones."""
        return await self.repo.page(guild_id, member, action, before_id, limit, after_id)

    async def drained(self) -> None:
        """Wait until every committed row so far has been mirrored (or given up)."""
        while self._poster is not None and not self._poster.done():
            await asyncio.shield(self._poster)

    async def _committed(self, entry: AuditEntry) -> None:
        """The database's audit sink: queue the row; one background task posts the queue."""
        self._pending.append(entry)
        if self._poster is None or self._poster.done():
            self._poster = asyncio.create_task(self._post_pending(), name="hailuo-audit-mirror")

    async def _post_pending(self) -> None:
        while self._pending:
            await self.mirror(self._pending.popleft())

    async def mirror(self, entry: AuditEntry) -> None:
        """Post a committed row to the server's log channel, if it set one; never raises."""
        try:
            settings = await self.settings.get(entry.guild_id)
            if settings.log_channel_id is not None:
                await self.notifier.log_event(settings.log_channel_id, entry)
        except Exception:  # the row is stored; a lost mirror is only logged
            log.exception("could not mirror audit row %s", entry.id)
