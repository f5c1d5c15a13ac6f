"""Approval requests: a held job, the moderators' message about it, and its one decision.

The decision is a single-winner write, ``UPDATE … WHERE decision IS NULL``:
when two moderators press at once (or a moderator and the expiry sweep, or
the member's cancel), exactly one write lands, its audit row commits with
it, and every other caller gets ``won=False`` with the winner's decision.
The job's own transition (``awaiting_approval`` -> ``queued`` …) belongs in
the same transaction: pass ``tx``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from storage.audit import AuditAction, append_audit
from storage.engine import Engine, within
from storage.engine import Statements as Tx
from storage.port import UnitOfWork


class ApprovalDecision(enum.StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # decided by the bot: nobody decided in time
    CANCELLED = "cancelled"  # the member withdrew the job


_AUDIT_ACTION = {
    ApprovalDecision.APPROVED: AuditAction.APPROVE,
    ApprovalDecision.REJECTED: AuditAction.REJECT,
    ApprovalDecision.EXPIRED: AuditAction.EXPIRE,
    ApprovalDecision.CANCELLED: AuditAction.CANCEL,
}


@dataclass(frozen=True)
class ApprovalRequest:
    job_id: int
    guild_id: int
    user_id: int
    mod_message_channel_id: int | None
    mod_message_id: int | None
    requested_at: float
    expires_at: float
    decided_by: int | None
    decision: ApprovalDecision | None
    reason: str
    decided_at: float | None

    @property
    def pending(self) -> bool:
        return self.decision is None


@dataclass(frozen=True)
class DecisionResult:
    """``won``: this call wrote the decision. Either way ``request`` holds the one decision."""

    won: bool
    request: ApprovalRequest


class UnknownApproval(LookupError):
    """No approval request exists for the job."""


INSERT_APPROVAL = """
INSERT INTO approvals (job_id, guild_id, user_id, requested_at, expires_at)
VALUES (:job, :guild, :user, :now, :expires_at)
"""
SELECT_APPROVAL = "SELECT * FROM approvals WHERE job_id = :job"
SET_MOD_MESSAGE = """
UPDATE approvals SET mod_message_channel_id = :channel, mod_message_id = :message
WHERE job_id = :job
"""
DECIDE = """
UPDATE approvals SET decision = :decision, decided_by = :by, reason = :reason, decided_at = :now
WHERE job_id = :job AND decision IS NULL
"""
SELECT_PENDING = """
SELECT * FROM approvals WHERE guild_id = :guild AND decision IS NULL ORDER BY job_id
"""
SELECT_DUE = """
SELECT * FROM approvals WHERE decision IS NULL AND expires_at <= :now ORDER BY expires_at, job_id
"""
SELECT_UNANNOUNCED = """
SELECT * FROM approvals WHERE decision IS NULL AND mod_message_id IS NULL ORDER BY job_id
"""


class ApprovalRepository:
    def __init__(self, db: Engine) -> None:
        self.db = db

    async def create(
        self,
        job_id: int,
        guild_id: int,
        user_id: int,
        *,
        now: float,
        expires_at: float,
        tx: UnitOfWork | None = None,
    ) -> ApprovalRequest:
        """Open the request; give the ``tx`` that creates the held job."""
        async with within(self.db, tx) as own:
            params = {"job": job_id, "guild": guild_id, "user": user_id}
            await own.execute(INSERT_APPROVAL, {**params, "now": now, "expires_at": expires_at})
            return await self._get(own, job_id)

    async def get(self, job_id: int) -> ApprovalRequest | None:
        row = await self.db.fetch_one(SELECT_APPROVAL, {"job": job_id})
        return _request(row) if row is not None else None

    async def set_mod_message(
        self, job_id: int, channel_id: int, message_id: int, tx: UnitOfWork | None = None
    ) -> None:
        params = {"job": job_id, "channel": channel_id, "message": message_id}
        async with within(self.db, tx) as own:
            if not await own.execute(SET_MOD_MESSAGE, params):
                raise UnknownApproval(job_id)

    async def decide(
        self,
        job_id: int,
        decision: ApprovalDecision,
        *,
        by: int | None,
        now: float,
        reason: str = "",
        tx: UnitOfWork | None = None,
    ) -> DecisionResult:
        """Write the decision if nobody has; the winner's audit row commits with it."""
        params = {"job": job_id, "decision": decision.value, "by": by, "reason": reason}
        async with within(self.db, tx) as own:
            won = bool(await own.execute(DECIDE, {**params, "now": now}))
            request = await self._get(own, job_id)
            if won:
                await append_audit(
                    own,
                    guild_id=request.guild_id,
                    action=_AUDIT_ACTION[decision],
                    actor_id=by,
                    now=now,
                    job_id=job_id,
                    target_user_id=request.user_id,
                    details={"reason": reason} if reason else None,
                )
        return DecisionResult(won, request)

    async def pending(self, guild_id: int) -> tuple[ApprovalRequest, ...]:
        rows = await self.db.fetch_all(SELECT_PENDING, {"guild": guild_id})
        return tuple(_request(r) for r in rows)

    async def due(self, now: float) -> tuple[ApprovalRequest, ...]:
        """Undecided requests whose time is up, for the expiry sweep (all servers)."""
        rows = await self.db.fetch_all(SELECT_DUE, {"now": now})
        return tuple(_request(r) for r in rows)

    async def unannounced(self) -> tuple[ApprovalRequest, ...]:
        """Undecided requests whose moderators' message is not posted yet (all servers)."""
        rows = await self.db.fetch_all(SELECT_UNANNOUNCED)
        return tuple(_request(r) for r in rows)

    @staticmethod
    async def _get(tx: Tx, job_id: int) -> ApprovalRequest:
        row = await tx.fetch_one(SELECT_APPROVAL, {"job": job_id})
        if row is None:
            raise UnknownApproval(job_id)
        return _request(row)


def _request(row: Any) -> ApprovalRequest:
    data = dict(row)
    if data["decision"] is not None:
        data["decision"] = ApprovalDecision(data["decision"])
    return ApprovalRequest(**data)
