"""The job service's front door: check what a request may cost, create the job, move credits.

Creating a job is one transaction: the member's block, cool-down, remaining
credits, the in-flight caps and the server's budgets are read and the job
row, its images and the reservation are written under the same ``BEGIN
IMMEDIATE``, so two requests racing for the last credit cannot both win.
Admins' grants, take-backs and resets are ledger entries written the same
way. The lifecycle after creation is ``worker.py``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hailuo.clock import Clock
from hailuo.errors import QuotaExceeded, UserInputError
from hailuo.gating import Gatekeeper
from hailuo.moderation import blocked_error, needs_approval
from hailuo.notify import AdminNotice, AdminNotifier
from hailuo.quotas import (
    MAX_CREDITS,
    AllowancePeriod,
    Balance,
    QuotaPolicy,
    budget_period,
    current_period,
    local_date,
    thresholds_crossed,
)
from hailuo.spec import JobSpec
from hailuo.status import JobStatus
from providers.base import PreparedInput
from storage.approvals import ApprovalRepository
from storage.audit import AuditAction, AuditRepository
from storage.db import Database, Tx
from storage.guilds import GuildRepository, Reader
from storage.jobs import Job, JobRepository, NewJob
from storage.ledger import LedgerEntryKind, LedgerRepository, append_entry
from storage.moderation import BlockRepository, ModerationSettingsRepository

log = logging.getLogger(__name__)

PolicySource = Callable[[int], Awaitable[QuotaPolicy]]
BUDGET_SCOPES = ("day", "month")


@dataclass(frozen=True)
class JobRequest:
    guild_id: int
    channel_id: int
    user_id: int
    spec: JobSpec
    interaction_id: int | None = None
    status_message_id: int | None = None
    locale: str = "en-US"
    attachment_limit: int | None = None
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    roles: frozenset[int] = frozenset()  # the member's role ids: their allowance tier
    parent_channel_id: int | None = None  # a thread's channel: the gate allows it like its own
    joined_at: float | None = None  # when the member joined the server, if known


@dataclass(frozen=True)
class BudgetState:
    scope: str  # "day" or "month"
    period: str
    budget: int
    spent: int
    renews_at: float


@dataclass(frozen=True)
class Admission:
    """What the checks found: the budgets' state, and a budget refusal if there is one."""

    budgets: list[BudgetState]
    refusal: QuotaExceeded | None = None
    refused_by: BudgetState | None = None


@dataclass(frozen=True)
class UsageReport:
    """A server's spend per local day (oldest first), its top members, and its budgets."""

    timezone: str
    days: list[tuple[date, int]]
    top: list[tuple[int, int]]  # (user id, credits), most first
    today: int
    month: int
    daily_budget: int | None
    monthly_budget: int | None


class JobDesk:
    """Admits new jobs against the quota and answers the questions about credits."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        policy: PolicySource,
        on_created: Callable[[], None],
        notices: AdminNotifier | None = None,
        moderation: ModerationSettingsRepository | None = None,
    ) -> None:
        self.db = db
        self.jobs = JobRepository(db)
        self.ledger = LedgerRepository(db)
        self.guilds = GuildRepository(db)
        self.blocks = BlockRepository(db)
        self.audit = AuditRepository(db)
        self.gate = Gatekeeper(db, moderation)
        self.approvals = ApprovalRepository(db)
        self.clock = clock
        self.policy = policy
        self.notices = notices
        self._on_created = on_created
        self._sending: set[asyncio.Task[None]] = set()

    async def balance(
        self,
        guild_id: int,
        user_id: int,
        *,
        roles: Collection[int] = (),
        tx: Tx | None = None,
        policy: QuotaPolicy | None = None,
    ) -> Balance:
        policy = policy or await self.policy(guild_id)
        period = current_period(self.clock(), policy.timezone, policy.period)
        usage = await self.ledger.usage(guild_id, user_id, period.key, tx)
        return Balance(
            allowance=policy.allowance_for(roles),
            used=usage.used,
            reserved=usage.reserved,
            renews_at=period.renews_at,
            adjusted=usage.adjusted,
        )

    async def precheck(
        self,
        guild_id: int,
        user_id: int,
        spec: JobSpec,
        *,
        roles: Collection[int] = (),
        channel_id: int | None = None,
        parent_channel_id: int | None = None,
    ) -> int:
        """A read-only look at channel, roles, prompt, block, cool-down, caps, credits and
        budgets; returns the cost."""
        await self.gate.check(
            guild_id,
            spec.prompt,
            channel_id=channel_id,
            role_ids=roles,
            parent_channel_id=parent_channel_id,
        )
        policy = await self.policy(guild_id)
        cost = policy.cost(spec)
        admission = await self._admit(self.db, policy, guild_id, user_id, roles, cost)
        if admission.refusal is not None:
            if admission.refused_by is not None:
                # Not a credit write: only the note that the budget's 100 % notice is due.
                async with self.db.transaction() as tx:
                    state = admission.refused_by
                    due = await self._due(tx, policy, guild_id, state, [100], state.spent)
                self._send(due)
            raise admission.refusal
        return cost

    async def create(self, request: JobRequest) -> Job:
        """Reserve the credits and create the job, or raise with nothing reserved."""
        policy = await self.policy(request.guild_id)
        cost = policy.cost(request.spec)
        now = self.clock()
        period = current_period(now, policy.timezone, policy.period)
        due: list[AdminNotice] = []
        async with self.db.transaction() as tx:
            # Again under the lock: a setting or blocklist entry may have changed since precheck.
            settings = await self.gate.check(
                request.guild_id,
                request.spec.prompt,
                channel_id=request.channel_id,
                role_ids=request.roles,
                parent_channel_id=request.parent_channel_id,
                tx=tx,
            )
            admission = await self._admit(
                tx, policy, request.guild_id, request.user_id, request.roles, cost
            )
            if admission.refused_by is not None:
                # A full budget is the 100 % notice even if the last job did not fit exactly.
                state = admission.refused_by
                due += await self._due(tx, policy, request.guild_id, state, [100], state.spent)
                job = None
            else:
                # A held job keeps its reservation while it waits (hailuo/approval.py).
                held = needs_approval(
                    settings, role_ids=request.roles, joined_at=request.joined_at, now=now
                )
                new = _new_job(request, cost, period.key, held=held)
                job_id = await self.jobs.create(tx, new, now)
                if held:
                    expires_at = now + settings.approval_expiry_seconds
                    await self.approvals.create(
                        job_id,
                        request.guild_id,
                        request.user_id,
                        now=now,
                        expires_at=expires_at,
                        tx=tx,
                    )
                for state in admission.budgets:
                    crossed = thresholds_crossed(state.spent, state.spent + cost, state.budget)
                    due += await self._due(
                        tx, policy, request.guild_id, state, crossed, state.spent + cost
                    )
                job = await self.jobs.get_in(tx, job_id)
        self._send(due)
        if admission.refusal is not None:
            raise admission.refusal
        assert job is not None
        log.info("created %s cost=%d", job.log_context(), cost)
        self._on_created()
        return job

    async def _admit(
        self,
        reader: Reader,
        policy: QuotaPolicy,
        guild_id: int,
        user_id: int,
        roles: Collection[int],
        cost: int,
    ) -> Admission:
        """Every rule a new job must pass, in order; the member's own rules raise at once."""
        now = self.clock()
        tx = reader if isinstance(reader, Tx) else None
        block = await self.blocks.active(guild_id, user_id, now, tx)
        if block is not None:
            raise blocked_error(block)
        if policy.cooldown_seconds > 0:
            last = await self.ledger.last_reservation(guild_id, user_id, tx)
            if now < last + policy.cooldown_seconds:
                raise QuotaExceeded(
                    "quota.cooldown",
                    seconds=policy.cooldown_seconds,
                    retry_at=int(last + policy.cooldown_seconds) + 1,
                )
        member, guild = await self.guilds.in_flight(guild_id, user_id, reader)
        if member >= policy.max_jobs_per_member:
            raise QuotaExceeded("quota.member_in_flight", maximum=policy.max_jobs_per_member)
        if guild >= policy.max_jobs_per_guild:
            raise QuotaExceeded("quota.guild_in_flight", maximum=policy.max_jobs_per_guild)
        balance = await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
        if cost > balance.remaining:
            raise QuotaExceeded(
                "quota.credits_week" if policy.period is AllowancePeriod.WEEK else "quota.credits",
                cost=cost,
                remaining=balance.remaining,
                allowance=balance.allowance,
                renews_at=int(balance.renews_at),
            )
        budgets: list[BudgetState] = []
        for scope in BUDGET_SCOPES:
            budget = policy.budget(scope)
            if budget is None:
                continue
            window = budget_period(now, policy.timezone, scope)
            spent = await self.ledger.guild_spend(guild_id, window.starts_at, window.renews_at, tx)
            state = BudgetState(scope, window.key, budget, spent, window.renews_at)
            if spent + cost > budget:
                refusal = QuotaExceeded(
                    f"quota.budget_{scope}",
                    cost=cost,
                    spent=spent,
                    budget=budget,
                    renews_at=int(window.renews_at),
                )
                return Admission(budgets, refusal, state)
            budgets.append(state)
        return Admission(budgets)

    async def _due(
        self,
        tx: Tx,
        policy: QuotaPolicy,
        guild_id: int,
        state: BudgetState,
        thresholds: list[int],
        spent: int,
    ) -> list[AdminNotice]:
        """The notices not yet sent this period for ``thresholds``, recorded as sent."""
        due = []
        for threshold in thresholds:
            fresh = await self.guilds.record_notice(
                tx,
                guild_id,
                scope=state.scope,
                period=state.period,
                threshold=threshold,
                spent=spent,
                budget=state.budget,
                now=self.clock(),
            )
            if fresh:
                params = {
                    "spent": spent,
                    "budget": state.budget,
                    "percent": spent * 100 // state.budget,
                    "renews_at": int(state.renews_at),
                }
                rule = f"notice.budget_{state.scope}_{threshold}"
                due.append(AdminNotice(guild_id, rule, params, policy.notice_channel_id))
        return due

    def _send(self, notices: list[AdminNotice]) -> None:
        """Post the notices in the background: the member's answer must not wait for them."""
        if not notices or self.notices is None:
            return
        task = asyncio.create_task(self._deliver(self.notices, notices), name="hailuo-notices")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _deliver(notifier: AdminNotifier, notices: list[AdminNotice]) -> None:
        for notice in notices:
            try:
                await notifier.admin_notice(notice)
            except Exception:  # a notice is best effort; it never breaks a job
                log.exception("admin notice %s for guild %s failed", notice.rule, notice.guild_id)

    async def notices_sent(self) -> None:
        """Wait for the notices in flight (tests, shutdown)."""
        while self._sending:
            await asyncio.gather(*list(self._sending))

    # -- admins ------------------------------------------------------------------------------

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str = "",
        roles: Collection[int] = (),
    ) -> Balance:
        """Give ``amount`` credits for this period, or take them back (negative, never below 0)."""
        if amount == 0 or abs(amount) > MAX_CREDITS:
            raise UserInputError(
                "admin.range.credits", value=amount, minimum=1, maximum=MAX_CREDITS
            )
        policy = await self.policy(guild_id)
        now = self.clock()
        period = current_period(now, policy.timezone, policy.period)
        async with self.db.transaction() as tx:
            balance = await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
            if -amount > balance.remaining:
                raise UserInputError(
                    "admin.take_too_many", amount=-amount, remaining=balance.remaining
                )
            await append_entry(
                tx,
                guild_id=guild_id,
                user_id=user_id,
                job_id=None,
                kind=LedgerEntryKind.GRANT,
                delta=amount,
                period=period.key,
                actor_id=actor_id,
                reason=reason[:200],
                now=now,
            )
            await self.audit.append(
                guild_id,
                AuditAction.GRANT,
                actor_id=actor_id,
                now=now,
                target_user_id=user_id,
                details={"credits": amount, "period": period.key, "reason": reason[:200]},
                tx=tx,
            )
            return await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)

    async def reset(
        self, guild_id: int, user_id: int, *, actor_id: int, roles: Collection[int] = ()
    ) -> Balance:
        """Back to the full allowance for this period, less what open jobs still hold."""
        policy = await self.policy(guild_id)
        now = self.clock()
        period = current_period(now, policy.timezone, policy.period)
        async with self.db.transaction() as tx:
            balance = await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
            target = max(0, balance.allowance - balance.reserved)
            delta = target - (balance.allowance + balance.adjusted - balance.used)
            if delta:
                await append_entry(
                    tx,
                    guild_id=guild_id,
                    user_id=user_id,
                    job_id=None,
                    kind=LedgerEntryKind.RESET,
                    delta=delta,
                    period=period.key,
                    actor_id=actor_id,
                    reason="reset by an admin",
                    now=now,
                )
            await self.audit.append(
                guild_id,
                AuditAction.RESET,
                actor_id=actor_id,
                now=now,
                target_user_id=user_id,
                details={"credits": delta, "period": period.key},
                tx=tx,
            )
            return await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)

    async def usage(self, guild_id: int, days: int = 30, top: int = 10) -> UsageReport:
        """Spend per local day for the last ``days`` days and the members who spent most."""
        policy = await self.policy(guild_id)
        now = self.clock()
        zone = policy.timezone
        today = local_date(now, zone)
        first = today - timedelta(days=days - 1)
        start = datetime(first.year, first.month, first.day, tzinfo=ZoneInfo(zone)).timestamp()
        end = budget_period(now, zone, "day").renews_at
        per_day: Counter[date] = Counter()
        per_member: Counter[int] = Counter()
        for row in await self.ledger.spend_rows(guild_id, start, end):
            per_day[local_date(row.reserved_at, zone)] += row.net
            per_member[row.user_id] += row.net
        month = budget_period(now, zone, "month")
        return UsageReport(
            timezone=zone,
            days=[
                (first + timedelta(days=i), per_day[first + timedelta(days=i)]) for i in range(days)
            ],
            top=[(user, spent) for user, spent in per_member.most_common(top) if spent > 0],
            today=per_day[today],
            month=await self.ledger.guild_spend(guild_id, month.starts_at, month.renews_at),
            daily_budget=policy.daily_budget,
            monthly_budget=policy.monthly_budget,
        )


def _new_job(request: JobRequest, cost: int, period: str, *, held: bool = False) -> NewJob:
    return NewJob(
        guild_id=request.guild_id,
        channel_id=request.channel_id,
        user_id=request.user_id,
        spec=request.spec,
        cost=cost,
        period=period,
        status=JobStatus.AWAITING_APPROVAL if held else JobStatus.QUEUED,
        interaction_id=request.interaction_id,
        status_message_id=request.status_message_id,
        locale=request.locale,
        attachment_limit=request.attachment_limit,
        images=request.images,
    )


async def prepared_input(jobs: JobRepository, job: Job) -> PreparedInput:
    """The job as a provider receives it: the spec and its stored images as data URLs."""
    stored = await jobs.images(job.id)
    urls = {role: _data_url(image.mime, image.data) for role, image in stored.items()}
    return PreparedInput(spec=job.spec, first_frame=urls.get("first"), last_frame=urls.get("last"))


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
