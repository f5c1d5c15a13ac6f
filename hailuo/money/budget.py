"""A server's spending budgets: whether a new job still fits, and the 80/100 % notices.

A server may cap what its members spend together per local day and per month, in
credits and in money (``hailuo.money.spend``). A job that would go over any budget
is refused; a job that crosses a notice threshold (or the refusal of a full budget)
tells the admins once per period: the notice is recorded in the same transaction as
the credit write, and posted in the background afterwards so the member's answer
never waits. A money budget's notices are the same, in dollars.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

from hailuo.clock import Clock
from hailuo.jobs.notify import AdminNotice, AdminNotifier
from hailuo.model.errors import QuotaExceeded
from hailuo.money.prices import usd
from hailuo.money.quotas import QuotaPolicy, budget_period, thresholds_crossed
from storage.port import GuildStore, LedgerStore, ModerationSettingsStore, UnitOfWork

log = logging.getLogger(__name__)

BUDGET_SCOPES = ("day", "month")


@dataclass(frozen=True)
class BudgetState:
    scope: str  # "day" or "month"
    period: str
    budget: int
    spent: int
    renews_at: float
    #: A money budget: ``budget`` and ``spent`` are micro-dollars, not credits.
    money: bool = False

    @property
    def notice_period(self) -> str:
        """The period a notice is recorded under: a money budget's own, so its notices
        and the credit budget's of the same day are each sent once."""
        return f"usd:{self.period}" if self.money else self.period


@dataclass(frozen=True)
class Admission:
    """What the checks found: the budgets' state, and a budget refusal if there is one.

    ``money`` are the money budgets a job fits, and ``price`` its estimated price in
    micro-dollars, the amount it adds to each of them."""

    budgets: list[BudgetState]
    refusal: QuotaExceeded | None = None
    refused_by: BudgetState | None = None
    money: list[BudgetState] = dataclasses.field(default_factory=list)
    price: int = 0


async def check_budgets(
    ledger: LedgerStore,
    policy: QuotaPolicy,
    guild_id: int,
    cost: int,
    now: float,
    tx: UnitOfWork | None,
) -> Admission:
    """Each budget the server set, with what was spent in it; the first one ``cost`` overruns
    is the refusal."""
    budgets: list[BudgetState] = []
    for scope in BUDGET_SCOPES:
        budget = policy.budget(scope)
        if budget is None:
            continue
        window = budget_period(now, policy.timezone, scope)
        spent = await ledger.guild_spend(guild_id, window.starts_at, window.renews_at, tx)
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


class BudgetNotices:
    """Records which budget notices are due (once per period) and posts them."""

    def __init__(
        self,
        guilds: GuildStore,
        clock: Clock,
        notifier: AdminNotifier | None,
        moderation: ModerationSettingsStore | None = None,
    ) -> None:
        self.guilds = guilds
        self.clock = clock
        self.notifier = notifier
        #: The servers' log channels: where a notice goes when no notice channel is set.
        self.moderation = moderation
        self._sending: set[asyncio.Task[None]] = set()

    async def full(
        self, tx: UnitOfWork, policy: QuotaPolicy, guild_id: int, state: BudgetState
    ) -> list[AdminNotice]:
        """A full budget is the 100 % notice even if the last job did not fit exactly."""
        return await self._due(tx, policy, guild_id, state, [100], state.spent)

    async def crossed(
        self,
        tx: UnitOfWork,
        policy: QuotaPolicy,
        guild_id: int,
        budgets: list[BudgetState],
        cost: int,
    ) -> list[AdminNotice]:
        """The notices a job of ``cost`` (credits, or micro-dollars for money budgets)
        reaches in each budget."""
        due: list[AdminNotice] = []
        for state in budgets:
            crossed = thresholds_crossed(state.spent, state.spent + cost, state.budget)
            due += await self._due(tx, policy, guild_id, state, crossed, state.spent + cost)
        return due

    async def _due(
        self,
        tx: UnitOfWork,
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
                period=state.notice_period,
                threshold=threshold,
                spent=spent,
                budget=state.budget,
                now=self.clock(),
            )
            if fresh:
                params: dict[str, object] = {
                    "spent": usd(spent) if state.money else spent,
                    "budget": usd(state.budget) if state.money else state.budget,
                    "percent": spent * 100 // state.budget,
                    "renews_at": int(state.renews_at),
                }
                kind = "money_budget" if state.money else "budget"
                rule = f"notice.{kind}_{state.scope}_{threshold}"
                due.append(AdminNotice(guild_id, rule, params, policy.notice_channel_id))
        return due

    def send(self, notices: list[AdminNotice]) -> None:
        """Post the notices in the background: the member's answer must not wait for them."""
        if not notices or self.notifier is None:
            return
        task = asyncio.create_task(self._deliver(notices), name="hailuo-notices")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, notices: list[AdminNotice]) -> None:
        notifier = self.notifier
        assert notifier is not None  # send() posts nothing without one
        for notice in notices:
            try:
                if notice.channel_id is None and self.moderation is not None:
                    settings = await self.moderation.get(notice.guild_id)
                    notice = dataclasses.replace(notice, log_channel_id=settings.log_channel_id)
                await notifier.admin_notice(notice)
            except Exception:  # a notice is best effort; it never breaks a job
                log.exception("admin notice %s for guild %s failed", notice.rule, notice.guild_id)

    async def sent(self) -> None:
        """Wait for the notices in flight (tests, shutdown)."""
        while self._sending:
            await asyncio.gather(*list(self._sending))
