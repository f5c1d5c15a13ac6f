"""The member's controls on a job: Cancel, Re-roll, Delete and Info; free of Discord.

The rules (who may press what, in which state, at what cost) are the pure
functions at the top; ``JobControls`` applies them inside the transaction that
acts, so a job that moved since the button was drawn is judged as it is now.

Cancel follows the design's table: before the provider accepted the job
(``awaiting_approval``, ``queued``) the credits come back in full; after it
(``submitted``, ``running``) the bot only stops following the task and the
credits stay spent, since no provider offers a cancel, so the front end must
ask the member to confirm first (``CancelPlan.charged``). ``submitting`` (the
call is on the wire) and ``succeeded`` (the video exists) cannot be cancelled.
Each cancel and each deleted video writes one audit row with the change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hailuo.clock import Clock
from hailuo.i18n.messages import Term
from hailuo.jobs.cards import FIRST_ANSWER_MISSED
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.jobs.notify import PostFailed
from hailuo.model.job import Job
from hailuo.model.spec import Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import (
    ActionRefused,
    Actor,
    ApprovalQueue,
    already_decided,
    may_moderate,
)
from storage.approvals import ApprovalDecision, ApprovalRequest, UnknownApproval
from storage.audit import AuditAction
from storage.ledger import LedgerEntry, LedgerEntryKind
from storage.port import Storage, UnitOfWork

log = logging.getLogger(__name__)

#: States whose job may be cancelled, and whether the credits stay spent.
CANCELLABLE: Mapping[JobStatus, bool] = {
    JobStatus.AWAITING_APPROVAL: False,
    JobStatus.QUEUED: False,
    JobStatus.SUBMITTED: True,
    JobStatus.RUNNING: True,
}
#: Finished jobs a member may make again (a rejected one stays rejected).
REROLLABLE = frozenset(
    {
        JobStatus.DELIVERED,
        JobStatus.FAILED,
        JobStatus.DELIVERY_FAILED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    }
)


@dataclass(frozen=True)
class CancelPlan:
    job: Job
    charged: bool  # the provider accepted it: the credits stay spent (confirm first)


@dataclass(frozen=True)
class RerollPlan:
    job: Job
    cost: int
    remaining: int


@dataclass(frozen=True)
class JobInfo:
    job: Job
    ledger: tuple[LedgerEntry, ...]

    @property
    def credits(self) -> str:
        """``held``, ``spent`` or ``refunded``, from the job's own ledger entries."""
        kinds = {entry.kind for entry in self.ledger}
        if LedgerEntryKind.REFUND in kinds:
            return "refunded"
        if LedgerEntryKind.CHARGE in kinds:
            return "spent"
        return "held"


def cancel_plan(job: Job, actor: Actor, *, moderator: bool) -> CancelPlan:
    """Whether ``actor`` may cancel ``job`` now, and what it costs; raises the rule broken."""
    if job.user_id != actor.user_id and not moderator:
        raise ActionRefused("control.cancel.not_yours", job_id=job.id)
    if job.status in CANCELLABLE:
        return CancelPlan(job, charged=CANCELLABLE[job.status])
    if job.status is JobStatus.SUBMITTING:
        raise ActionRefused("control.cancel.submitting", job_id=job.id)
    if job.status is JobStatus.SUCCEEDED:
        raise ActionRefused("control.cancel.succeeded", job_id=job.id)
    raise ActionRefused("control.cancel.finished", job_id=job.id, state=_state(job))


def check_reroll(job: Job, actor: Actor) -> None:
    if job.user_id != actor.user_id:
        raise ActionRefused("control.reroll.not_yours", job_id=job.id)
    if job.status is JobStatus.REJECTED:
        raise ActionRefused("control.reroll.rejected", job_id=job.id)
    if job.status not in REROLLABLE:
        raise ActionRefused("control.reroll.not_finished", job_id=job.id, state=_state(job))


def check_delete(job: Job, actor: Actor, *, moderator: bool) -> None:
    if job.user_id != actor.user_id and not moderator:
        raise ActionRefused("control.delete.not_yours", job_id=job.id)
    if job.status is not JobStatus.DELIVERED or job.delivered_message_id is None:
        raise ActionRefused("control.delete.no_video", job_id=job.id)


def _state(job: Job) -> Term:
    """The state in words, for a refusal: rendered in the presser's language when shown."""
    return Term(f"state.{job.status.value}")


class AuditRecorder(Protocol):
    """``hailuo.moderation.audit.AuditLog.record``: one row, in ``tx``, mirrored once committed."""

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
    ) -> int: ...


class VideoRemover(Protocol):
    async def remove_video(self, job: Job) -> bool:
        """Delete the posted video message; False if it was already gone. Raises PostFailed."""
        ...


class JobControls:
    def __init__(
        self,
        db: Storage,
        *,
        desk: JobDesk,
        approvals: ApprovalQueue,
        audit: AuditRecorder,
        remover: VideoRemover,
        clock: Clock,
    ) -> None:
        self.db = db
        self.desk = desk
        self.jobs = desk.jobs
        self.approvals = approvals
        self.audit = audit
        self.remover = remover
        self.clock = clock

    async def job(self, guild_id: int, job_id: int) -> Job:
        """The server's job ``job_id``; a job of another server is as unknown as a missing one."""
        job = await self.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise ActionRefused("control.unknown_job", job_id=job_id)
        return job

    async def _moderator(self, job: Job, actor: Actor, tx: UnitOfWork | None = None) -> bool:
        if job.user_id == actor.user_id:
            return False
        return may_moderate(await self.approvals.settings.get(job.guild_id, tx), actor)

    # -- cancel ------------------------------------------------------------------------------

    async def plan_cancel(self, guild_id: int, job_id: int, actor: Actor) -> CancelPlan:
        """What pressing Cancel would do now (read only): the front end confirms a charge."""
        job = await self.job(guild_id, job_id)
        return cancel_plan(job, actor, moderator=await self._moderator(job, actor))

    async def cancel(
        self, guild_id: int, job_id: int, actor: Actor, *, confirmed: bool
    ) -> CancelPlan:
        """Cancel the job as it is now; ``confirmed``: the member saw that it stays charged.

        Returns the cancelled job and whether its credits stayed spent.
        """
        now = self.clock()
        decided = None
        async with self.db.transaction() as tx:
            job = await self.jobs.get(job_id, tx)
            if job is None or job.guild_id != guild_id:
                raise ActionRefused("control.unknown_job", job_id=job_id)
            plan = cancel_plan(job, actor, moderator=await self._moderator(job, actor, tx))
            if plan.charged and not confirmed:
                # It was accepted since the button was drawn: show the cost first.
                raise ActionRefused("control.cancel.needs_confirm", job_id=job_id)
            if job.status is JobStatus.AWAITING_APPROVAL:
                # The decision (and its audit row) in the same transaction: a moderator
                # pressing at this moment finds the request withdrawn, or wins first.
                decided = await self._withdraw(tx, job, actor, now)
            if decided is None:
                await self.audit.record(
                    job.guild_id,
                    AuditAction.CANCEL,
                    actor_id=actor.user_id,
                    job_id=job.id,
                    target_user_id=job.user_id,
                    details={"from": job.status.value, "charged": plan.charged},
                    tx=tx,
                    now=now,
                )
            job = await self.jobs.transition(
                job, JobStatus.CANCELLED, now, reason="cancelled", actor_id=actor.user_id, tx=tx
            )
        log.info("cancelled by %d: %s", actor.user_id, job.log_context())
        self.approvals.published(job, decided)
        return CancelPlan(job, plan.charged)

    async def _withdraw(
        self, tx: UnitOfWork, job: Job, actor: Actor, now: float
    ) -> ApprovalRequest | None:
        """Decide the held job's request as withdrawn; None if it has no request."""
        try:
            result = await self.approvals.approvals.decide(
                job.id, ApprovalDecision.CANCELLED, by=actor.user_id, now=now, tx=tx
            )
        except UnknownApproval:
            return None
        if not result.won:  # cannot happen while the job still waits: both move together
            raise already_decided(result.request)
        return result.request

    async def withdraw_unanswered(self, job_id: int) -> Job | None:
        """Cancel, refunded, a job whose first answer never reached its member.

        Discord refused the answer (its 3 seconds had passed): the member saw "did not
        respond" and will likely ask again, so this job must not stay charged beside
        the next one. Only a job that costs nothing to stop (held or queued) is
        withdrawn; None if it moved on (the caller announces it in the channel instead).
        """
        now = self.clock()
        decided = None
        async with self.db.transaction() as tx:
            job = await self.jobs.get(job_id, tx)
            if job is None or job.status not in (JobStatus.AWAITING_APPROVAL, JobStatus.QUEUED):
                return None
            if job.status is JobStatus.AWAITING_APPROVAL:
                decided = await self._withdraw(tx, job, Actor(job.user_id), now)
            if decided is None:
                await self.audit.record(
                    job.guild_id,
                    AuditAction.CANCEL,
                    actor_id=None,
                    job_id=job.id,
                    target_user_id=job.user_id,
                    details={"from": job.status.value, "charged": False, "why": "no_answer"},
                    tx=tx,
                    now=now,
                )
            job = await self.jobs.transition(
                job,
                JobStatus.CANCELLED,
                now,
                reason="first answer missed",
                tx=tx,
                failure_rule=FIRST_ANSWER_MISSED,
            )
        log.info("withdrawn, its first answer missed: %s", job.log_context())
        self.approvals.published(job, decided)
        return job

    async def open_jobs(self, guild_id: int, user_id: int, limit: int = 25) -> list[Job]:
        """The member's jobs that could still be cancelled, newest first."""
        recent = await self.jobs.recent_for_member(guild_id, user_id, limit=100)
        return [job for job in recent if not job.status.terminal][:limit]

    # -- re-roll -----------------------------------------------------------------------------

    async def plan_reroll(self, guild_id: int, job_id: int, actor: Actor) -> RerollPlan:
        """What making the job again costs now, and what the member has left."""
        job = await self.job(guild_id, job_id)
        check_reroll(job, actor)
        policy = await self.desk.policy(guild_id)
        balance = await self.desk.balance(
            guild_id, actor.user_id, roles=actor.role_ids, policy=policy
        )
        return RerollPlan(job, policy.cost(job.spec), balance.remaining)

    async def reroll(
        self,
        guild_id: int,
        job_id: int,
        actor: Actor,
        *,
        channel_id: int | None = None,
        interaction_id: int | None = None,
        locale: str | None = None,
        attachment_limit: int | None = None,
        joined_at: float | None = None,
        parent_channel_id: int | None = None,
    ) -> Job:
        """A new job with the same request and images, with its own reservation.

        Everything a new request passes applies (``JobDesk.create``: the server's gate,
        the member's block, caps, credits and budgets, and the approval policy).
        """
        job = await self.job(guild_id, job_id)
        check_reroll(job, actor)
        images = {role: (i.mime, i.data) for role, i in (await self.jobs.images(job.id)).items()}
        if job.spec.mode is not Mode.TEXT and "first" not in images:
            # Deleted past the re-roll window (HAILUO_IMAGE_RETENTION_HOURS).
            raise ActionRefused("control.reroll.images_gone", job_id=job.id)
        return await self.desk.create(
            JobRequest(
                guild_id=guild_id,
                channel_id=channel_id or job.channel_id,
                user_id=actor.user_id,
                spec=job.spec,
                interaction_id=interaction_id,
                locale=locale or job.locale,
                attachment_limit=attachment_limit,
                images=images,
                roles=actor.role_ids,
                parent_channel_id=parent_channel_id,
                joined_at=joined_at,
            )
        )

    # -- delete and info ---------------------------------------------------------------------

    async def delete_video(self, guild_id: int, job_id: int, actor: Actor) -> Job:
        """Remove the posted video (the member's or a moderator's press); audited once."""
        job = await self.job(guild_id, job_id)
        check_delete(job, actor, moderator=await self._moderator(job, actor))
        try:
            removed = await self.remover.remove_video(job)
        except PostFailed as exc:
            log.warning("could not delete the video of %s: %s", job.log_context(), exc)
            raise ActionRefused("control.delete.failed", job_id=job.id) from None
        if not removed:
            raise ActionRefused("control.delete.gone", job_id=job.id)
        await self.audit.record(
            job.guild_id,
            AuditAction.VIDEO_DELETED,
            actor_id=actor.user_id,
            job_id=job.id,
            target_user_id=job.user_id,
            details={"message_id": job.delivered_message_id, "kind": job.delivery_kind},
            now=self.clock(),
        )
        log.info("video deleted by %d: %s", actor.user_id, job.log_context())
        return job

    async def info(self, guild_id: int, job_id: int) -> JobInfo:
        job = await self.job(guild_id, job_id)
        return JobInfo(job, tuple(await self.desk.ledger.for_job(job.id)))
