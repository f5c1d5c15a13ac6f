"""Allowance and budget periods: a server's local day, week (from Monday) or month.

Allowances renew at 00:00 of the server's time zone; a period's key is stored with every
ledger entry, so a late refund goes back to the period its reservation was made in.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hailuo.clock import to_datetime


class AllowancePeriod(enum.StrEnum):
    DAY = "day"
    WEEK = "week"


@dataclass(frozen=True)
class Period:
    """One period: its key (stored on ledger rows and notices), when it began and renews."""

    key: str
    starts_at: float
    renews_at: float


def current_period(
    now: float, timezone: str = "UTC", kind: AllowancePeriod = AllowancePeriod.DAY
) -> Period:
    """The member's allowance period around ``now``: a local day, or a week from Monday.
    Every new job asks for it three times: the one around the start of ``now``'s quarter
    hour is kept (``_quarter``), and found afresh only if it does not hold ``now``."""
    period = _quarter(int(now // 900), timezone, kind)
    return (
        period
        if period.starts_at <= now < period.renews_at
        else _period_around(now, timezone, kind)
    )


@functools.lru_cache(maxsize=256)
def _quarter(quarter: int, timezone: str, kind: AllowancePeriod) -> Period:
    return _period_around(quarter * 900.0, timezone, kind)


def _period_around(now: float, timezone: str, kind: AllowancePeriod) -> Period:
    local = to_datetime(now).astimezone(ZoneInfo(timezone))
    start = _midnight(local)
    if kind is AllowancePeriod.WEEK:
        start = _midnight(start - timedelta(days=start.weekday()))
        iso = start.isocalendar()
        return Period(f"{iso.year}-W{iso.week:02d}", start.timestamp(), _days_later(start, 7))
    return Period(start.date().isoformat(), start.timestamp(), _days_later(start, 1))


def budget_period(now: float, timezone: str, scope: str) -> Period:
    """The server's budget period: its local day (``"day"``) or month (``"month"``)."""
    if scope == "day":
        return current_period(now, timezone)
    local = to_datetime(now).astimezone(ZoneInfo(timezone))
    start = _midnight(local.replace(day=1))
    nxt = _midnight((start + timedelta(days=32)).replace(day=1))
    return Period(f"{start.year:04d}-{start.month:02d}", start.timestamp(), nxt.timestamp())


def local_date(ts: float, timezone: str) -> date:
    return to_datetime(ts).astimezone(ZoneInfo(timezone)).date()


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _days_later(start: datetime, days: int) -> float:
    # Add days on the calendar, then find midnight again: DST days are 23 or 25 h long.
    return _midnight(start + timedelta(days=days, hours=3)).timestamp()
