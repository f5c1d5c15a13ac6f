"""The job service's front door: check what a request may cost, and create the job.

Creating a job is one transaction: the member's block, cool-down, remaining
credits, the in-flight caps and the server's budgets are read and the job
row, its images and the reservation are written under the same ``BEGIN
IMMEDIATE``, so two requests racing for the last credit cannot both win.
Balances and the admins' grants, take-backs and resets are ``credits.py``;
the budgets and their notices ``budget.py``; the spend report ``usage.py``.
The lifecycle after creation is ``worker.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import replace

from hailuo.clock import Clock
from hailuo.jobs.notify import AdminNotice, AdminNotifier
from hailuo.jobs.requests import JobRequest as JobRequest  # re-exported: its old home
from hailuo.logs import job_fields
from hailuo.model.errors import QuotaExceeded, UserInputError
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec
from hailuo.moderation.gating import BlocklistChanged, Gatekeeper, Screening
from hailuo.moderation.screening import blocked_error, needs_approval
from hailuo.money.budget import Admission, BudgetNotices, check_budgets
from hailuo.money.credits import Credits, PolicySource
from hailuo.money.quotas import AllowancePeriod, QuotaPolicy, current_period
from hailuo.money.spend import check_money_budgets, money_report
from hailuo.money.usage import (
    UsageReport as UsageReport,  # re-exported: cogs/admin.py imports it here
)
from hailuo.money.usage import usage_report
from storage.ledger import LedgerEntry
from storage.port import ModerationSettingsStore, Storage, UnitOfWork

log = logging.getLogger(__name__)
SCREEN_ATTEMPTS = 3  # screenings of one request while admins keep changing the blocklist


class JobDesk:
    """Admits new jobs against the quota and answers the questions about credits."""

    def __init__(
        self,
        db: Storage,
        *,
        clock: Clock,
        policy: PolicySource,
        on_created: Callable[[], None],
        notices: AdminNotifier | None = None,
        moderation: ModerationSettingsStore | None = None,
    ) -> None:
        self.db = db
        self.jobs = db.jobs
        self.ledger = db.ledger
        self.guilds = db.guilds
        self.blocks = db.blocks
        self.gate = Gatekeeper(db, moderation)
        self.approvals = db.approvals
        self.clock = clock
        self.policy = policy
        self.budget_notices = BudgetNotices(
            self.guilds, clock, notices, moderation or db.moderation
        )
        self.credits = Credits(db, self.ledger, db.audit, clock, policy)
        # The desk answers for the credits too: a member's balance, an admin's grant or reset.
        self.balance = self.credits.balance
        self.grant = self.credits.grant
        self.reset = self.credits.reset
        self._on_created = on_created
        self._places: dict[int, str] = {}  # where each server's results go (``results_in``)
        self._reading_place: dict[int, asyncio.Future[str]] = {}
        #: Jobs being created now: a command that finds others asks no write before its answer.
        self.creating = 0

    async def precheck(
        self,
        guild_id: int,
        user_id: int,
        spec: JobSpec,
        *,
        roles: Collection[int] = (),
        channel_id: int | None = None,
        parent_channel_id: int | None = None,
        screened: Screening | None = None,
    ) -> int:
        """A read-only look at channel, roles, prompt, block, cool-down, caps, credits and
        budgets; returns the cost. The channel, role and prompt rules are not looked at
        again when the command's ``first_look`` did (``screened``, of this very request)."""
        if screened is None or not screened.covers(
            guild_id, spec.prompt, channel_id, roles, parent_channel_id
        ):
            await self.first_look(
                guild_id,
                spec,
                roles=roles,
                channel_id=channel_id,
                parent_channel_id=parent_channel_id,
            )
        policy = await self.policy(guild_id)
        cost = policy.cost(spec)
        admission = await self._admit(None, policy, guild_id, user_id, roles, cost, spec)
        if admission.refusal is not None:
            if admission.refused_by is not None:
                # Not a credit write: only the note that the budget's 100 % notice is due.
                async with self.db.transaction() as tx:
                    due = await self.budget_notices.full(tx, policy, guild_id, admission.refused_by)
                self.budget_notices.send(due)
            raise admission.refusal
        return cost

    async def first_look(
        self,
        guild_id: int,
        spec: JobSpec,
        *,
        roles: Collection[int] = (),
        channel_id: int | None = None,
        parent_channel_id: int | None = None,
    ) -> Screening:
        """The channel, role and prompt rules on what this process knows of the server: what
        a command checks before its first answer, with no storage read once the server is
        known (``Gatekeeper.first_look``). Hand the result to ``create``."""
        return await self.gate.first_look(
            guild_id,
            spec.prompt,
            channel_id=channel_id,
            role_ids=roles,
            parent_channel_id=parent_channel_id,
        )

    async def create(self, request: JobRequest, screened: Screening | None = None) -> Job:
        """Reserve the credits and create the job, or raise with nothing reserved.

        The prompt is screened before the write lock is taken, never under it (``screened``:
        by the command's ``first_look`` already); if the blocklist changed in between, it is
        screened again.
        """
        self.creating += 1
        try:
            return await self._create_screened(request, screened)
        finally:
            self.creating -= 1

    async def _create_screened(self, request: JobRequest, screened: Screening | None) -> Job:
        for attempt in range(1, SCREEN_ATTEMPTS + 1):
            if screened is None or (screened.guild_id, screened.prompt) != (
                request.guild_id,
                request.spec.prompt,
            ):
                # On the blocklist this process knows: the transaction compares it with the
                # stored one (``Gatekeeper.check``) and sends a changed one back here.
                screened = await self.gate.screen(
                    request.guild_id, request.spec.prompt, fresh=False
                )
            try:
                return await self._create(request, screened)
            except BlocklistChanged:
                log.info("blocklist of guild %d changed while creating", request.guild_id)
                if attempt == SCREEN_ATTEMPTS:
                    raise UserInputError("moderation.blocklist_busy") from None
                screened = None
        raise AssertionError("unreachable")

    async def _create(self, request: JobRequest, screened: Screening) -> Job:
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
                screened=screened,
            )
            admission = await self._admit(
                tx, policy, request.guild_id, request.user_id, request.roles, cost, request.spec
            )
            if admission.refusal is not None:  # a budget (credits or money) is full
                if admission.refused_by is not None:
                    due += await self.budget_notices.full(
                        tx, policy, request.guild_id, admission.refused_by
                    )
                job = None
            else:
                # A held job keeps its reservation while it waits (hailuo/moderation/approval.py).
                held = needs_approval(
                    settings, role_ids=request.roles, joined_at=request.joined_at, now=now
                )
                # The member's way of being told is read by the insert (``notify=None``), and
                # the job comes back from it as stored: no read before or after.
                new = request.new_job(cost, period.key, held=held, notify=None)
                job = await self.jobs.add(tx, new, now)
                if held:
                    expires_at = now + settings.approval_expiry_seconds
                    await self.approvals.create(
                        job.id,
                        request.guild_id,
                        request.user_id,
                        now=now,
                        expires_at=expires_at,
                        tx=tx,
                    )
                due += await self.budget_notices.crossed(
                    tx, policy, request.guild_id, admission.budgets, cost
                )
                due += await self.budget_notices.crossed(
                    tx, policy, request.guild_id, admission.money, admission.price
                )
        self.budget_notices.send(due)
        if admission.refusal is not None:
            raise admission.refusal
        assert job is not None
        log.info("created %s cost=%d", job.log_context(), cost, extra=job_fields(job))
        self._on_created()
        return job

    async def _admit(
        self,
        tx: UnitOfWork | None,
        policy: QuotaPolicy,
        guild_id: int,
        user_id: int,
        roles: Collection[int],
        cost: int,
        spec: JobSpec,
    ) -> Admission:
        """Every rule a new job must pass, in order; the member's own rules raise at once.

        Read inside ``tx`` when creating (the same unit of work as the write), else from
        the committed state (a precheck)."""
        now = self.clock()
        # Every read first; the rules are then checked in their order, so the member hears
        # the first one broken.
        if tx is None:  # each read a trip to the database: all at once, one queue
            block, last, (member, guild), balance, admission = await asyncio.gather(
                self.blocks.active(guild_id, user_id, now, tx),
                self._last_reservation(policy, guild_id, user_id, tx),
                self.guilds.in_flight(guild_id, user_id, tx),
                self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy),
                check_budgets(self.ledger, policy, guild_id, cost, now, tx),
            )
        else:
            block = await self.blocks.active(guild_id, user_id, now, tx)
            last = await self._last_reservation(policy, guild_id, user_id, tx)
            member, guild = await self.guilds.in_flight(guild_id, user_id, tx)
            balance = await self.balance(guild_id, user_id, roles=roles, tx=tx, policy=policy)
            admission = await check_budgets(self.ledger, policy, guild_id, cost, now, tx)
        if block is not None:
            raise blocked_error(block)
        if now < last + policy.cooldown_seconds:
            raise QuotaExceeded(
                "quota.cooldown",
                seconds=policy.cooldown_seconds,
                retry_at=int(last + policy.cooldown_seconds) + 1,
            )
        if member >= policy.max_jobs_per_member:
            raise QuotaExceeded("quota.member_in_flight", maximum=policy.max_jobs_per_member)
        if guild >= policy.max_jobs_per_guild:
            raise QuotaExceeded("quota.guild_in_flight", maximum=policy.max_jobs_per_guild)
        if cost > balance.remaining:
            raise QuotaExceeded(
                "quota.credits_week" if policy.period is AllowancePeriod.WEEK else "quota.credits",
                cost=cost,
                remaining=balance.remaining,
                allowance=balance.allowance,
                renews_at=int(balance.renews_at),
            )
        if admission.refusal is None:
            # The owner's money, like the credits: refused before anything is charged.
            money = await check_money_budgets(self.guilds, policy, guild_id, spec, now, tx)
            # The money refusal, if any, and both kinds of budgets for the notices.
            return replace(money, budgets=admission.budgets)
        return admission

    async def _last_reservation(
        self, policy: QuotaPolicy, guild_id: int, user_id: int, tx: UnitOfWork | None
    ) -> float:
        """The cool-down's clock; not read when the server has no cool-down."""
        if policy.cooldown_seconds <= 0:
            return float("-inf")
        return await self.ledger.last_reservation(guild_id, user_id, tx)

    def wake(self) -> None:
        """Have the worker look again now (a job's card appeared, a job was created)."""
        self._on_created()

    async def attach_card(self, job_id: int, channel_id: int, message_id: int) -> None:
        """Remember the job's status card (the message the member was answered with), then
        wake the worker so the card shows whatever the job became meanwhile."""
        await self.jobs.set_status_message(job_id, channel_id, message_id, self.clock())
        self.wake()

    async def get(self, job_id: int) -> Job | None:
        """The job as stored now."""
        return await self.jobs.get(job_id)

    async def recent(self, guild_id: int, user_id: int, limit: int) -> list[Job]:
        """The member's latest jobs in the server, newest first (``/hailuo jobs``)."""
        return list(await self.jobs.recent_for_member(guild_id, user_id, limit))

    async def recent_ledger(self, guild_id: int, user_id: int, limit: int) -> list[LedgerEntry]:
        """The member's latest credit movements, newest first (``/hailuo credits``)."""
        return list(await self.ledger.recent(guild_id, user_id, limit))

    async def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each state (the health check, ``/metrics``)."""
        return await self.jobs.count_by_status()

    async def remembered(self, key: str) -> str | None:
        """A value the front end keeps across restarts (the synced commands' hash)."""
        return await self.jobs.get_state(key)

    async def remember(self, key: str, value: str) -> None:
        await self.jobs.put_state(key, value)

    async def swap_remembered(self, key: str, expected: str | None, value: str) -> bool:
        """Compare-and-set: True for the one process that replaced ``expected``."""
        return await self.jobs.swap_state(key, expected, value)

    async def made_by(self, interaction_id: int) -> Job | None:
        """The job an interaction made, if any: what an unexpected error must own up to."""
        return await self.jobs.by_interaction(interaction_id)

    # -- where results go (a server's place, a member's way of being told) ----------------

    async def results_in(self, guild_id: int, *, fresh: bool = False) -> str:
        """ "channel" (default) or "thread": a thread per job, started from its card.

        Kept per server once read (it changes only through ``set_results_in``); ``fresh``
        reads the stored value, as a refusal made on it must."""
        place = None if fresh else self._places.get(guild_id)
        if place is not None:
            return place
        reading = None if fresh else self._reading_place.get(guild_id)
        if reading is None:  # one read for every command of a burst that asks meanwhile
            reading = asyncio.ensure_future(self.db.delivery.place(guild_id))
            self._reading_place[guild_id] = reading
            reading.add_done_callback(lambda done: self._place_read(guild_id, done))
        return await asyncio.shield(reading)

    def _place_read(self, guild_id: int, done: asyncio.Future[str]) -> None:
        if self._reading_place.get(guild_id) is not done:
            return  # changed meanwhile (``set_results_in``): not kept
        del self._reading_place[guild_id]
        if not done.cancelled() and done.exception() is None:
            self._places[guild_id] = done.result()

    async def set_results_in(self, guild_id: int, value: str, *, actor_id: int | None) -> None:
        self._forget_place(guild_id)
        try:
            await self.db.delivery.set_place(guild_id, value, actor_id=actor_id, now=self.clock())
        finally:
            self._forget_place(guild_id)

    def _forget_place(self, guild_id: int) -> None:
        self._places.pop(guild_id, None)
        self._reading_place.pop(guild_id, None)

    async def notify_mode(self, guild_id: int, user_id: int) -> str:
        """ "mention" (default), "dm" or "quiet": how the member is told of a result."""
        return await self.db.delivery.notify(guild_id, user_id)

    async def set_notify(self, guild_id: int, user_id: int, value: str) -> None:
        """Applies to the member's jobs made from now on (a job keeps its own choice)."""
        await self.db.delivery.set_notify(guild_id, user_id, value, now=self.clock())

    async def set_thread(self, job_id: int, thread_id: int) -> None:
        """The job's results go to ``thread_id`` (started from its card) from now on."""
        await self.db.delivery.set_thread(job_id, thread_id)

    async def notices_sent(self) -> None:
        """Wait for the budget notices in flight (tests, shutdown)."""
        await self.budget_notices.sent()

    async def usage(self, guild_id: int, days: int = 30, top: int = 10) -> UsageReport:
        """Spend per local day for the last ``days`` days and the members who spent most."""
        policy = await self.policy(guild_id)
        now = self.clock()
        report = await usage_report(self.ledger, policy, guild_id, now, days=days, top=top)
        money = await money_report(self.guilds, policy, guild_id, now, days=days)
        return replace(report, money=money)
