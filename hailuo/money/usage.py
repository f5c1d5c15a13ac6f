"""A server's spend report: credits per local day, the members who spent most, the budgets.

Read from the ledger's net spend (reservations less refunds), counted by the
day the job was reserved in the server's time zone, for the admins' usage view.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hailuo.money.quotas import QuotaPolicy, budget_period, local_date
from hailuo.money.spend import MoneyReport
from storage.port import LedgerStore


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
    #: The same days in money (estimated from the providers' prices); filled by the desk.
    money: MoneyReport | None = None


async def usage_report(
    ledger: LedgerStore,
    policy: QuotaPolicy,
    guild_id: int,
    now: float,
    *,
    days: int,
    top: int,
) -> UsageReport:
    """Spend per local day for the last ``days`` days and the ``top`` members who spent most."""
    zone = policy.timezone
    today = local_date(now, zone)
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=ZoneInfo(zone)).timestamp()
    end = budget_period(now, zone, "day").renews_at
    per_day: Counter[date] = Counter()
    per_member: Counter[int] = Counter()
    for row in await ledger.spend_rows(guild_id, start, end):
        per_day[local_date(row.reserved_at, zone)] += row.net
        per_member[row.user_id] += row.net
    month = budget_period(now, zone, "month")
    return UsageReport(
        timezone=zone,
        days=[(first + timedelta(days=i), per_day[first + timedelta(days=i)]) for i in range(days)],
        top=[(user, spent) for user, spent in per_member.most_common(top) if spent > 0],
        today=per_day[today],
        month=await ledger.guild_spend(guild_id, month.starts_at, month.renews_at),
        daily_budget=policy.daily_budget,
        monthly_budget=policy.monthly_budget,
    )
