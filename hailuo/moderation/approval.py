"""The approval queue: held jobs, the moderators' one decision about each, and expiry.

A job that ``hailuo.moderation.screening.needs_approval`` holds is created in
``awaiting_approval`` with its reservation and an approvals row (``JobDesk.create``,
one transaction). From there, every move is one transaction holding both the
single-winner decision (``ApprovalRepository.decide``, which writes the audit
row) and the job's guarded transition with its settlement:

- approve: ``awaiting_approval -> queued``; the worker then submits it;
- reject (with a reason the member reads): ``-> rejected``, refunded;
- expire (``sweep``, from the worker's tick): ``-> expired``, refunded;
- the member's cancel (``hailuo.jobs.controls``): ``-> cancelled``, refunded.

Two moderators pressing at once: one decision lands, the other caller gets
``ActionRefused`` naming the winner. Who may decide is checked at press time
(``may_moderate``) from facts the front end supplies (roles, Manage Messages),
and only in the server the press came from: a job of another server is as
unknown as a missing one, whatever its id. Approving judges the job again as a
new request would be judged now (``Recheck``: a block placed while it waited,
the in-flight caps), since the member may have changed in the meantime.
The moderators' message is posted by ``sweep`` (so a crash before it is posted
only delays it) and edited once the request is decided; those edits, and the
member's status card, are best effort and run in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from hailuo.clock import Clock
from hailuo.jobs.notify import PostFailed, StatusView
from hailuo.model.errors import HailuoError
from hailuo.model.job import Job, StoredImage
from hailuo.model.moderation import ModerationSettings
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from storage.approvals import (
    ApprovalDecision,
    ApprovalRequest,
    UnknownApproval,
)
from storage.port import ModerationSettingsStore, Storage, UnitOfWork

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 300
ANNOUNCE_RETRY = (30.0, 600.0)  # first and longest wait after a failed post of the request


class ActionRefused(HailuoError):
    """A button or command the presser may not use on this job now; ``rule`` says why."""


@dataclass(frozen=True)
class Actor:
    """Who pressed, as the front end saw them at that moment."""

    user_id: int
    role_ids: frozenset[int] = frozenset()
    #: Manage Messages (or Administrator) in the job's own channel, or where its request
    #: was posted; never merely where they typed (the front end reads it there).
    manage_messages: bool = False


def may_moderate(settings: ModerationSettings, actor: Actor) -> bool:
    """The moderator role, or Manage Messages in the channel, may decide and act for others."""
    if actor.manage_messages:
        return True
    role = settings.moderator_role_id
    return role is not None and role in actor.role_ids


def approval_channel(settings: ModerationSettings, job: Job) -> int | None:
    """Where the moderators are asked: the log channel, or nowhere (None).

    Never the channel of the request: the request shows the member's image before
    any moderation, and that channel is public. ``/hailuo-admin moderation`` refuses
    approval without a log channel; a server that has it from ``HAILUO_APPROVAL``
    alone gets no post, and its held jobs expire refunded unless decided otherwise.
    """
    return settings.log_channel_id


def already_decided(request: ApprovalRequest) -> ActionRefused:
    """What a second moderator (or a late press) is told: who decided first, and when."""
    decision = request.decision or ApprovalDecision.EXPIRED
    return ActionRefused(
        f"approval.already_{decision.value}",
        job_id=request.job_id,
        by=request.decided_by or 0,
        at=int(request.decided_at or 0),
        reason=request.reason,
    )


class StatusNotifier(Protocol):
    async def show_status(self, view: StatusView) -> None:
        """Edit the member's status card (best effort: never raises)."""
        ...


class ApprovalNotifier(Protocol):
    async def post_request(
        self, channel_id: int, job: Job, request: ApprovalRequest, image: StoredImage | None
    ) -> int:
        """Post the moderators' message (with Approve and Reject); its id. Raises PostFailed."""
        ...

    async def show_decision(self, job: Job, request: ApprovalRequest) -> None:
        """Edit the moderators' message to the decision, without buttons (never raises)."""
        ...


@dataclass(frozen=True)
class Decision:
    job: Job  # as the decision left it
    request: ApprovalRequest  # with the decision


class ApprovalQueue:
    def __init__(
        self,
        db: Storage,
        *,
        clock: Clock,
        status: StatusNotifier,
        notifier: ApprovalNotifier,
        on_queued: Callable[[], None],
        settings: ModerationSettingsStore | None = None,
        policy: Callable[[int], Awaitable[QuotaPolicy]] | None = None,
    ) -> None:
        self.db = db
        self.jobs = db.jobs
        self.approvals = db.approvals
        self.settings = settings or db.moderation
        self.blocks = db.blocks
        self.guilds = db.guilds
        self.policy = policy  # each server's caps; None: only a block is checked again
        self.clock = clock
        self.status = status
        self.notifier = notifier
        self.on_queued = on_queued
        self._background: set[asyncio.Task[None]] = set()
        self._announcing: set[int] = set()
        self._retry: dict[int, tuple[float, float]] = {}  # job id -> (next attempt, last wait)

    # -- the moderators' decisions -----------------------------------------------------------

    async def decision_channels(self, guild_id: int, job_id: int) -> tuple[int, ...]:
        """Where a moderator's Manage Messages counts for this job: its own channel and the
        channel of the moderators' request. Raises if the job is not this server's."""
        job = await self.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise ActionRefused("approval.unknown", job_id=job_id)
        request = await self.approvals.get(job_id)
        channels = [job.channel_id]
        if request is not None and request.mod_message_channel_id is not None:
            channels.append(request.mod_message_channel_id)
        else:
            asked = approval_channel(await self.settings.get(job.guild_id), job)
            if asked is not None:
                channels.append(asked)
        return tuple(channels)

    async def check_pending(self, guild_id: int, job_id: int, actor: Actor) -> ApprovalRequest:
        """Refuse now what a decision would refuse (before the Reject modal opens, for one)."""
        job = await self.jobs.get(job_id)
        request = await self.approvals.get(job_id)
        if job is None or request is None or job.guild_id != guild_id:
            raise ActionRefused("approval.unknown", job_id=job_id)
        settings = await self.settings.get(job.guild_id)
        if not may_moderate(settings, actor):
            raise _not_moderator(settings)
        if not request.pending:
            raise already_decided(request)
        return request

    async def approve(self, guild_id: int, job_id: int, actor: Actor) -> Decision:
        decision = await self._decide(guild_id, job_id, ApprovalDecision.APPROVED, actor, "")
        self.on_queued()
        return decision

    async def reject(self, guild_id: int, job_id: int, actor: Actor, reason: str) -> Decision:
        reason = " ".join(reason.split())[:MAX_REASON_CHARS]
        if not reason:
            raise ActionRefused("approval.reason_empty")
        return await self._decide(guild_id, job_id, ApprovalDecision.REJECTED, actor, reason)

    async def _decide(
        self, guild_id: int, job_id: int, decision: ApprovalDecision, actor: Actor, reason: str
    ) -> Decision:
        target = JobStatus.QUEUED if decision is ApprovalDecision.APPROVED else JobStatus.REJECTED
        now = self.clock()
        async with self.db.transaction() as tx:
            job = await self.jobs.get(job_id, tx)
            if job is None or job.guild_id != guild_id:
                # Another server's job is as unknown as a missing one: nothing about it leaks.
                raise ActionRefused("approval.unknown", job_id=job_id)
            settings = await self.settings.get(job.guild_id, tx)
            if not may_moderate(settings, actor):
                raise _not_moderator(settings)
            if decision is ApprovalDecision.APPROVED and actor.user_id == job.user_id:
                # A moderator's own request needs another pair of eyes.
                raise ActionRefused("approval.own_job", job_id=job_id)
            if decision is ApprovalDecision.APPROVED:
                # The member may have been blocked, or the caps lowered, while it waited.
                await self._recheck(tx, job, now)
            try:
                result = await self.approvals.decide(
                    job_id, decision, by=actor.user_id, now=now, reason=reason, tx=tx
                )
            except UnknownApproval:
                raise ActionRefused("approval.unknown", job_id=job_id) from None
            if not result.won:
                raise already_decided(result.request)
            if reason:  # the member reads it on the card
                updates: dict[str, Any] = {
                    "failure_rule": "approval.rejected",
                    "failure_params": {"reason": reason},
                }
            else:  # the worker's queue deadline counts from now, not from the request
                updates = {"provider_meta": {**job.provider_meta, "queued_at": now}}
            job = await self.jobs.transition(
                job, target, now, reason=decision.value, actor_id=actor.user_id, tx=tx, **updates
            )
        log.info("%s by %d: %s", decision.value, actor.user_id, job.log_context())
        self.published(job, result.request)
        return Decision(job, result.request)

    async def _recheck(self, tx: UnitOfWork, job: Job, now: float) -> None:
        """What creating the job checked, judged again now, before it may cost money.

        Held jobs count in the caps when a request is made (``IN_FLIGHT`` holds
        ``awaiting_approval``); approving one must still leave the jobs actually in the
        making within the caps, which an admin may have lowered while it waited. A
        refusal leaves the request pending: the moderator may approve later, or reject.
        """
        if await self.blocks.active(job.guild_id, job.user_id, now, tx) is not None:
            raise ActionRefused("approval.member_blocked", job_id=job.id, user_id=job.user_id)
        if self.policy is None:
            return
        policy = await self.policy(job.guild_id)
        member, guild = await self.guilds.active(job.guild_id, job.user_id, tx)
        if member >= policy.max_jobs_per_member:
            raise ActionRefused(
                "approval.member_in_flight",
                job_id=job.id,
                user_id=job.user_id,
                maximum=policy.max_jobs_per_member,
            )
        if guild >= policy.max_jobs_per_guild:
            raise ActionRefused(
                "approval.guild_in_flight", job_id=job.id, maximum=policy.max_jobs_per_guild
            )

    # -- the worker's tick: expiry and posting the requests ----------------------------------

    async def sweep(self) -> None:
        """Expire every request whose time is up; post the requests not posted yet."""
        now = self.clock()
        for request in await self.approvals.due(now):
            try:
                await self._expire(request.job_id, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not expire the approval of job %d", request.job_id)
        for request in await self.approvals.unannounced():
            job_id = request.job_id
            if job_id in self._announcing or self._retry.get(job_id, (0.0, 0.0))[0] > now:
                continue
            self._announcing.add(job_id)
            self._spawn(self._announce(request), f"hailuo-approval-{job_id}")

    async def _expire(self, job_id: int, now: float) -> None:
        async with self.db.transaction() as tx:
            result = await self.approvals.decide(
                job_id, ApprovalDecision.EXPIRED, by=None, now=now, tx=tx
            )
            if not result.won:
                return
            job = await self.jobs.get(job_id, tx)
            assert job is not None
            job = await self.jobs.transition(job, JobStatus.EXPIRED, now, reason="expired", tx=tx)
        log.info("approval expired: %s", job.log_context())
        self.published(job, result.request)

    async def _announce(self, request: ApprovalRequest) -> None:
        job_id = request.job_id
        try:
            job = await self.jobs.get(job_id)
            if job is None or job.status is not JobStatus.AWAITING_APPROVAL:
                return
            settings = await self.settings.get(job.guild_id)
            channel_id = approval_channel(settings, job)
            if channel_id is None:
                # No moderators' channel: never the public one (the image is unmoderated).
                log.warning(
                    "approval request for job %d not posted: guild %d has no log channel; "
                    "set one with /hailuo-admin moderation",
                    job_id,
                    job.guild_id,
                )
                return
            image = (await self.jobs.images(job_id)).get("first")
            try:
                message_id = await self.notifier.post_request(channel_id, job, request, image)
            except PostFailed as exc:
                wait = min(ANNOUNCE_RETRY[1], 2 * self._retry.get(job_id, (0.0, 0.0))[1])
                wait = max(wait, ANNOUNCE_RETRY[0])
                self._retry[job_id] = (self.clock() + wait, wait)
                log.warning("approval request for job %d not posted: %s", job_id, exc)
                return
            self._retry.pop(job_id, None)
            await self.approvals.set_mod_message(job_id, channel_id, message_id)
            fresh = await self.approvals.get(job_id)
            if fresh is not None and not fresh.pending:
                # Decided while the message was on its way: show the decision on it.
                latest = await self.jobs.get(job_id)
                await self.notifier.show_decision(latest or job, fresh)
        finally:
            self._announcing.discard(job_id)

    # -- what members and moderators see ------------------------------------------------------

    def published(self, job: Job, request: ApprovalRequest | None) -> None:
        """Show the job on the member's card and a decision on the moderators' message, in
        the background: the presser's answer does not wait for these edits."""
        self._spawn(self._publish(job, request), f"hailuo-card-{job.id}")

    async def _publish(self, job: Job, request: ApprovalRequest | None) -> None:
        await self.status.show_status(StatusView(job=job))
        if request is not None and request.mod_message_id is not None:
            await self.notifier.show_decision(job, request)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._logged(work), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # best effort: the decision is committed whatever a post does
            log.exception("approval notification failed")

    async def settled(self) -> None:
        """Wait for the posts and edits in flight (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background))


def _not_moderator(settings: ModerationSettings) -> ActionRefused:
    role = settings.moderator_role_id
    if role is None:
        return ActionRefused("approval.not_moderator")
    return ActionRefused("approval.not_moderator_role", role=f"<@&{role}>")
