"""What a job costs and how much a member may spend: the one cost table.

Allowances renew at 00:00 of the server's time zone (UTC until one is
chosen); the period key stored with every ledger entry ties a refund to the
day its reservation was made, so a late refund never inflates today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hailuo.clock import to_datetime
from hailuo.spec import JobSpec

#: Credits per (resolution, duration); the design's defaults. One table.
DEFAULT_COSTS: dict[tuple[str, int], int] = {
    ("512P", 6): 1,
    ("512P", 10): 1,
    ("768P", 6): 1,
    ("768P", 10): 2,
    ("1080P", 6): 2,
}


def cost_of(spec: JobSpec, costs: dict[tuple[str, int], int] | None = None) -> int:
    table = DEFAULT_COSTS if costs is None else costs
    return table[(spec.resolution, spec.duration)]


@dataclass(frozen=True)
class QuotaPolicy:
    """A server's limits; the defaults let a new server work with no set-up."""

    daily_credits: int = 10
    max_jobs_per_member: int = 2
    max_jobs_per_guild: int = 50
    timezone: str = "UTC"


@dataclass(frozen=True)
class Period:
    """One allowance period: its key (stored on ledger rows) and when it renews."""

    key: str
    renews_at: float


def current_period(now: float, timezone: str = "UTC") -> Period:
    local = to_datetime(now).astimezone(ZoneInfo(timezone))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Add a day on the calendar, then find midnight again: DST days are 23 or 25 h long.
    nxt = (start + timedelta(days=1, hours=3)).replace(hour=0, minute=0, second=0)
    return Period(key=start.date().isoformat(), renews_at=_ts(nxt))


def _ts(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(frozen=True)
class Balance:
    """A member's credits in the current period, derived from the ledger."""

    allowance: int
    used: int  # reserved or charged this period, net of refunds
    reserved: int  # part of ``used`` still held by open jobs
    renews_at: float

    @property
    def remaining(self) -> int:
        return max(0, self.allowance - self.used)
