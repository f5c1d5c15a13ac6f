"""The owner's money: what a server's videos cost at their providers' prices, and the
money budgets a new job must fit.

Why from the jobs and not from the ledger: the ledger counts credits, which say nothing
of who made a video; a job records its provider and its spec, and the price table
(``hailuo.money.prices``) turns those into money. The figures are estimates: a provider's
bill is the truth, the table is the owner's best knowledge of it.

What counts:
- the view counts *delivered* videos, at the price of the provider that made them;
- a money budget counts delivered videos and the jobs still in flight (a job not yet at a
  provider at the dearest price it may fail over to), so the budget is checked, like the
  credit budget, before the member is charged. Failed, refused and cancelled jobs count
  nothing. A job whose price nobody stated counts nothing and is reported as unpriced.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hailuo.model.errors import QuotaExceeded
from hailuo.model.spec import JobSpec
from hailuo.model.status import IN_FLIGHT, JobStatus
from hailuo.money.budget import Admission, BudgetState
from hailuo.money.prices import estimate, price_of, usd
from hailuo.money.quotas import QuotaPolicy, budget_period, local_date
from storage.port import GuildStore, UnitOfWork

#: The jobs a money budget counts: delivered, or still on their way to being so.
COUNTED = IN_FLIGHT | {JobStatus.DELIVERED}
MONEY_SCOPES = ("day", "month")


@dataclass(frozen=True)
class MoneyReport:
    """Estimated money per local day and per provider (delivered videos), and the budgets."""

    days: list[tuple[date, dict[str, int]]]  # oldest first; provider -> micro-dollars
    providers: dict[str, tuple[int, int]]  # provider -> (micro-dollars, videos), over the days
    unpriced: int  # delivered videos over the days whose price is unknown
    today: int
    month: int
    daily_budget: int | None
    monthly_budget: int | None


def _job_price(policy: QuotaPolicy, provider: str | None, spec: tuple[str, str, int]) -> int | None:
    model, resolution, duration = spec
    if provider is not None:
        price = price_of(policy.prices, provider, model, resolution, duration)
        if price is not None:
            return price
    return estimate(policy.prices, policy.priced_providers, model, resolution, duration)


async def money_report(
    guilds: GuildStore, policy: QuotaPolicy, guild_id: int, now: float, *, days: int
) -> MoneyReport:
    """Delivered videos' money per local day and per provider over the last ``days`` days."""
    zone = policy.timezone
    today = local_date(now, zone)
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=ZoneInfo(zone)).timestamp()
    month = budget_period(now, zone, "month")
    end = budget_period(now, zone, "day").renews_at
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    per_provider: Counter[str] = Counter()
    videos: Counter[str] = Counter()
    unpriced = 0
    month_total = 0
    for job in await guilds.priced_jobs(guild_id, min(start, month.starts_at), end):
        if job.status is not JobStatus.DELIVERED or job.provider is None:
            continue
        price = price_of(policy.prices, job.provider, job.model, job.resolution, job.duration)
        in_days = job.created_at >= start
        if price is None:
            unpriced += in_days
            continue
        if job.created_at >= month.starts_at:
            month_total += price
        if in_days:
            per_day[local_date(job.created_at, zone)][job.provider] += price
            per_provider[job.provider] += price
            videos[job.provider] += 1
    day_list = [
        (first + timedelta(days=i), dict(per_day[first + timedelta(days=i)])) for i in range(days)
    ]
    return MoneyReport(
        days=day_list,
        providers={name: (per_provider[name], videos[name]) for name in sorted(videos)},
        unpriced=unpriced,
        today=sum(per_day[today].values()),
        month=month_total,
        daily_budget=policy.daily_money_budget,
        monthly_budget=policy.monthly_money_budget,
    )


async def money_spent(
    guilds: GuildStore,
    policy: QuotaPolicy,
    guild_id: int,
    start: float,
    end: float,
    tx: UnitOfWork | None = None,
) -> int:
    """What the budget counts in ``[start, end)``: delivered and in-flight jobs, priced."""
    total = 0
    for job in await guilds.priced_jobs(guild_id, start, end, tx):
        if job.status in COUNTED:
            price = _job_price(policy, job.provider, (job.model, job.resolution, job.duration))
            total += price or 0
    return total


async def check_money_budgets(
    guilds: GuildStore,
    policy: QuotaPolicy,
    guild_id: int,
    spec: JobSpec,
    now: float,
    tx: UnitOfWork | None,
) -> Admission:
    """The money budgets this job's estimated price fits, with what was spent in each,
    or the refusal when it would overrun one.

    Read in the same unit of work as the reservation when creating, so two jobs cannot
    both fit the last dollar. A job whose price nobody stated fits (it is counted as
    nothing; the usage view says how many such videos there were). The states feed the
    80 %/100 % notices, as the credit budgets' do (``BudgetNotices``).
    """
    cost = _job_price(policy, None, (spec.model, spec.resolution, spec.duration)) or 0
    budgets: list[BudgetState] = []
    for scope in MONEY_SCOPES:
        budget = policy.money_budget(scope)
        if budget is None:
            continue
        window = budget_period(now, policy.timezone, scope)
        spent = await money_spent(guilds, policy, guild_id, window.starts_at, window.renews_at, tx)
        state = BudgetState(scope, window.key, budget, spent, window.renews_at, money=True)
        if spent + cost > budget:
            refusal = QuotaExceeded(
                f"quota.money_budget_{scope}",
                cost=usd(cost),
                spent=usd(spent),
                budget=usd(budget),
                renews_at=int(window.renews_at),
            )
            return Admission([], refusal, state, money=budgets, price=cost)
        budgets.append(state)
    return Admission([], money=budgets, price=cost)
