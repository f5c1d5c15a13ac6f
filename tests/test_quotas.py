"""The money rules: costs, tiers, periods in a time zone, budgets and their notices, blocks.

Pure rules are tested as functions; everything that touches credits goes through the
real ``JobDesk`` and ``GuildPolicies`` on a real SQLite file, with an injected clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random
from zoneinfo import ZoneInfo

import pytest

from hailuo.i18n.messages import CATALOG, placeholders
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import HailuoError, ModerationBlocked, QuotaExceeded, UserInputError
from hailuo.model.spec import MODEL_RULES, JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money import periods
from hailuo.money.quotas import (
    DEFAULT_COSTS,
    AllowancePeriod,
    GuildPolicies,
    QuotaPolicy,
    budget_period,
    cost_of,
    current_period,
    thresholds_crossed,
)
from storage.db import Database
from storage.guilds import GuildConfig, GuildSettings
from tests.pg_server import BOTH_ENGINES
from tests.support import FakeClock, RecordingNotifier

ENGINES = BOTH_ENGINES

GUILD = 1
ROLE_CREATORS = 777
ROLE_BOOSTERS = 778
NY = "America/New_York"
SD = JobSpec(mode=Mode.TEXT, prompt="a cat")  # 768P 6 s: 1 credit
HD = JobSpec(mode=Mode.TEXT, prompt="a cat", resolution="1080P")  # 2 credits


def at(*parts: int, tz: str = "UTC") -> float:
    return datetime(*parts, tzinfo=ZoneInfo(tz)).timestamp()


def make(
    db: Database, clock: FakeClock, defaults: QuotaPolicy | None = None
) -> tuple[JobDesk, GuildPolicies, RecordingNotifier]:
    notifier = RecordingNotifier()
    policies = GuildPolicies(db, defaults or QuotaPolicy(), clock)
    desk = JobDesk(db, clock=clock, policy=policies, on_created=lambda: None, notices=notifier)
    return desk, policies, notifier


async def make_job(
    desk: JobDesk, user: int = 42, spec: JobSpec = SD, roles: frozenset[int] = frozenset()
):
    return await desk.create(JobRequest(GUILD, 2, user, spec, roles=roles))


async def settle(desk: JobDesk, job, to: JobStatus = JobStatus.CANCELLED) -> None:
    await desk.jobs.transition(job, to, desk.clock())


# -- pure rules ------------------------------------------------------------------------------


def test_every_valid_request_has_a_cost() -> None:
    for rule in MODEL_RULES.values():
        for resolution, durations in rule.durations.items():
            for duration in durations:
                assert (rule.name, resolution, duration) in DEFAULT_COSTS


def test_the_design_costs_and_a_server_override() -> None:
    assert cost_of(SD) == 1
    assert cost_of(HD) == 2
    assert cost_of(JobSpec(mode=Mode.TEXT, prompt="x", duration=10)) == 2
    override = {(SD.model, "768P", 6): 3}
    assert cost_of(SD, override) == 3
    assert cost_of(HD, override) == 2


def test_highest_tier_wins_and_never_lowers_the_allowance() -> None:
    policy = QuotaPolicy(daily_credits=10, tiers={ROLE_CREATORS: 30, ROLE_BOOSTERS: 20, 5: 1})
    assert policy.allowance_for([]) == 10
    assert policy.allowance_for([ROLE_BOOSTERS]) == 20
    assert policy.allowance_for([ROLE_BOOSTERS, ROLE_CREATORS, 123]) == 30
    assert policy.allowance_for([5]) == 10


def test_stored_settings_overlay_the_defaults_and_null_keeps_them() -> None:
    defaults = QuotaPolicy(daily_credits=7, max_jobs_per_member=3)
    stored = GuildConfig(
        GuildSettings(GUILD, timezone=NY, daily_budget=40, allowance_period="week"),
        tiers={ROLE_CREATORS: 12},
        costs={(SD.model, "768P", 6): 2},
    )
    policy = defaults.overlaid(stored)
    assert (policy.daily_credits, policy.max_jobs_per_member, policy.max_jobs_per_guild) == (
        7,
        3,
        50,
    )
    assert (policy.timezone, policy.daily_budget, policy.monthly_budget) == (NY, 40, None)
    assert policy.period is AllowancePeriod.WEEK
    assert policy.cost(SD) == 2 and policy.allowance_for([ROLE_CREATORS]) == 12


def test_a_day_is_the_local_day_even_across_daylight_saving() -> None:
    just_before = at(2026, 11, 26, 23, 59, 59, tz=NY)
    day = current_period(just_before, NY)
    assert day.key == "2026-11-26"
    assert day.renews_at == at(2026, 11, 27, tz=NY) == just_before + 1
    assert current_period(day.renews_at, NY).key == "2026-11-27"
    # 1 November 2026 is 25 hours long in New York (clocks go back).
    long_day = current_period(at(2026, 11, 1, 12, tz=NY), NY)
    assert long_day.renews_at - long_day.starts_at == 25 * 3600
    # The same instant is another day in UTC.
    assert current_period(just_before, "UTC").key == "2026-11-27"


def test_a_week_starts_on_monday_and_a_month_on_the_first() -> None:
    sunday = at(2026, 11, 29, 23, 0, tz=NY)
    week = current_period(sunday, NY, AllowancePeriod.WEEK)
    assert week.key == "2026-W48"
    assert week.starts_at == at(2026, 11, 23, tz=NY) and week.renews_at == at(2026, 11, 30, tz=NY)
    month = budget_period(sunday, NY, "month")
    assert (month.key, month.starts_at, month.renews_at) == (
        "2026-11",
        at(2026, 11, 1, tz=NY),
        at(2026, 12, 1, tz=NY),
    )
    december = budget_period(at(2026, 12, 31, 23, tz=NY), NY, "month")
    assert december.renews_at == at(2027, 1, 1, tz=NY)


@pytest.mark.parametrize(
    ("before", "after", "budget", "crossed"),
    [
        (0, 7, 10, []),
        (7, 8, 10, [80]),
        (8, 9, 10, []),
        (7, 10, 10, [80, 100]),
        (9, 10, 10, [100]),
        (10, 11, 10, []),
        (0, 1, 1, [80, 100]),
        (79, 80, 100, [80]),
    ],
)
def test_thresholds_crossed(before: int, after: int, budget: int, crossed: list[int]) -> None:
    assert thresholds_crossed(before, after, budget) == crossed


def test_every_money_rule_has_a_catalog_entry_with_its_numbers() -> None:
    expected = {
        "quota.credits": {"cost", "remaining", "allowance", "renews_at"},
        "quota.credits_week": {"cost", "remaining", "allowance", "renews_at"},
        "quota.cooldown": {"seconds", "retry_at"},
        "quota.budget_day": {"cost", "spent", "budget", "renews_at"},
        "quota.budget_month": {"cost", "spent", "budget", "renews_at"},
        "notice.budget_day_80": {"spent", "budget", "percent", "renews_at"},
        "notice.budget_day_100": {"spent", "budget", "renews_at"},
        "notice.budget_month_80": {"spent", "budget", "percent", "renews_at"},
        "notice.budget_month_100": {"spent", "budget", "renews_at"},
        "admin.take_too_many": {"amount", "remaining"},
        "admin.range.credits": {"value", "minimum", "maximum"},
        "admin.timezone": {"name", "examples"},
        "admin.manage_guild": set(),
    }
    for code, names in expected.items():
        assert placeholders(CATALOG["en"][code]) == names, code


# -- through the desk, on a real SQLite file --------------------------------------------------


async def test_a_role_tier_gives_its_members_more(db, clock) -> None:
    desk, policies, _ = make(db, clock, QuotaPolicy(daily_credits=2, max_jobs_per_member=50))
    await policies.set_tier(GUILD, ROLE_CREATORS, 5, actor_id=9)
    await policies.set_tier(GUILD, ROLE_BOOSTERS, 3, actor_id=9)
    creators = frozenset({ROLE_BOOSTERS, ROLE_CREATORS})
    for _ in range(5):
        await make_job(desk, user=50, roles=creators)
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk, user=50, roles=creators)
    assert refused.value.params["allowance"] == 5
    for _ in range(2):
        await make_job(desk, user=51)
    with pytest.raises(QuotaExceeded, match=r"quota\.credits"):
        await desk.precheck(GUILD, 51, SD)
    balance = await desk.balance(GUILD, 50, roles=creators)
    assert (balance.allowance, balance.remaining, balance.reserved) == (5, 0, 5)
    await policies.set_tier(GUILD, ROLE_CREATORS, None, actor_id=9)  # removed: boosters' 3 wins
    assert (await desk.balance(GUILD, 50, roles=creators)).allowance == 3


async def test_credits_renew_at_midnight_of_the_servers_time_zone(db, clock) -> None:
    desk, policies, _ = make(db, clock, QuotaPolicy(daily_credits=2, max_jobs_per_member=50))
    await policies.set_timezone(GUILD, NY, actor_id=9)
    clock.now = at(2026, 11, 26, 18, 59, 30, tz=NY)  # 23:59:30 UTC
    await make_job(desk)
    await make_job(desk)
    clock.now = at(2026, 11, 27, 0, 0, 30)  # midnight UTC has passed, not New York's
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk)
    assert refused.value.params["renews_at"] == int(at(2026, 11, 27, tz=NY))
    clock.now = at(2026, 11, 26, 23, 59, 59, tz=NY)
    with pytest.raises(QuotaExceeded):
        await desk.precheck(GUILD, 42, SD)
    clock.advance(1)  # 00:00:00 in New York
    assert await desk.precheck(GUILD, 42, SD) == 1
    balance = await desk.balance(GUILD, 42)
    assert (balance.remaining, balance.reserved) == (2, 0)


async def test_a_weekly_allowance_renews_on_monday(db, clock) -> None:
    desk, policies, _ = make(db, clock, QuotaPolicy(max_jobs_per_member=50))
    await policies.set_allowance(GUILD, 3, AllowancePeriod.WEEK, actor_id=9)
    clock.now = at(2026, 11, 23, 9)  # a Monday
    for _ in range(3):
        await make_job(desk)
    clock.now = at(2026, 11, 29, 23, 59)  # Sunday night
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk)
    assert refused.value.rule == "quota.credits_week"
    clock.now = at(2026, 11, 30, 0, 0, 1)
    await make_job(desk)


async def test_a_refund_goes_back_to_the_day_of_its_reservation(db, clock) -> None:
    desk, _, _ = make(db, clock, QuotaPolicy(daily_credits=2))
    clock.now = at(2026, 11, 26, 23, 0)
    job = await make_job(desk, spec=HD)
    clock.now = at(2026, 11, 27, 1, 0)
    await settle(desk, job, JobStatus.CANCELLED)
    today = await desk.balance(GUILD, 42)
    assert (today.used, today.adjusted, today.remaining) == (0, 0, 2)
    yesterday = await desk.ledger.usage(GUILD, 42, "2026-11-26")
    assert (yesterday.used, yesterday.reserved, yesterday.total) == (0, 0, 0)


async def test_the_daily_budget_tells_admins_at_80_and_100_percent_once(db, clock) -> None:
    desk, policies, notifier = make(db, clock, QuotaPolicy(daily_credits=100))
    await policies.set_budget(GUILD, 9, daily=10, monthly=None)
    await policies.set_notice_channel(GUILD, 555, actor_id=9)
    clock.now = at(2026, 11, 26, 10)
    jobs = [await make_job(desk, user=100 + i) for i in range(8)]
    await desk.notices_sent()
    assert [n.rule for n in notifier.notices] == ["notice.budget_day_80"]
    assert notifier.notices[0].params["spent"] == 8 and notifier.notices[0].channel_id == 555
    await settle(desk, jobs[0])  # spend falls to 7 ...
    await make_job(desk, user=200)  # ... and crosses 80 % again: told once per day only
    await make_job(desk, user=201)
    await make_job(desk, user=202)
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk, user=203)
    assert refused.value.rule == "quota.budget_day"
    assert dict(refused.value.params) == {
        "cost": 1,
        "spent": 10,
        "budget": 10,
        "renews_at": int(at(2026, 11, 27)),
    }
    await desk.notices_sent()
    assert [n.rule for n in notifier.notices] == ["notice.budget_day_80", "notice.budget_day_100"]
    clock.now = at(2026, 11, 27, 10)  # a new day: a new budget, new notices
    for i in range(8):
        await make_job(desk, user=300 + i)
    await desk.notices_sent()
    assert [n.rule for n in notifier.notices][-1] == "notice.budget_day_80"
    assert len(notifier.notices) == 3


async def test_a_budget_that_cannot_fit_the_next_job_is_full(db, clock) -> None:
    desk, policies, notifier = make(db, clock, QuotaPolicy(daily_credits=100))
    await policies.set_budget(GUILD, 9, daily=9, monthly=None)
    for i in range(4):
        await make_job(desk, user=10 + i, spec=HD)  # 8 of 9
    with pytest.raises(QuotaExceeded, match=r"quota\.budget_day"):
        await desk.precheck(GUILD, 20, HD)  # the command's first look already says it is full
    with pytest.raises(QuotaExceeded, match=r"quota\.budget_day"):
        await make_job(desk, user=21, spec=HD)
    await make_job(desk, user=22, spec=SD)  # a 1-credit job still fits
    await desk.notices_sent()
    assert [(n.rule, n.params["spent"]) for n in notifier.notices] == [
        ("notice.budget_day_80", 8),
        ("notice.budget_day_100", 8),
    ]


async def test_the_monthly_budget_and_grants_that_do_not_count_as_spend(db, clock) -> None:
    desk, policies, notifier = make(db, clock, QuotaPolicy(daily_credits=1))
    await policies.set_budget(GUILD, 9, daily=None, monthly=3)
    clock.now = at(2026, 11, 28, 12)
    await desk.grant(GUILD, 42, 5, actor_id=9, reason="event winner")
    await make_job(desk, user=42)
    clock.now = at(2026, 11, 29, 12)
    await make_job(desk, user=42)
    await make_job(desk, user=43)
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk, user=44)
    assert refused.value.rule == "quota.budget_month"
    assert refused.value.params["renews_at"] == int(at(2026, 12, 1))
    clock.now = at(2026, 12, 1, 0, 0, 1)
    await make_job(desk, user=44)
    await desk.notices_sent()
    assert [n.rule for n in notifier.notices] == [
        "notice.budget_month_80",
        "notice.budget_month_100",
    ]
    await policies.set_budget(GUILD, 9, daily=None, monthly=0)  # 0 removes it
    assert (await desk.policy(GUILD)).monthly_budget is None


async def test_a_blocked_member_is_refused_at_precheck(db, clock) -> None:
    desk, policies, _ = make(db, clock)
    await policies.block(GUILD, 42, actor_id=9, reason="spam")
    with pytest.raises(ModerationBlocked) as refused:
        await desk.precheck(GUILD, 42, SD)
    assert refused.value.rule == "moderation.blocked"
    with pytest.raises(ModerationBlocked):
        await make_job(desk)
    assert await desk.precheck(GUILD, 43, SD) == 1  # only that member
    assert await policies.unblock(GUILD, 42, actor_id=9) is True
    assert await policies.unblock(GUILD, 42, actor_id=9) is False
    await make_job(desk)


async def test_cool_down_is_off_by_default_and_a_server_may_set_one(db, clock) -> None:
    desk, policies, _ = make(db, clock)
    await make_job(desk)
    await settle(desk, await make_job(desk))
    await policies.set_limits(GUILD, 9, cooldown_seconds=60)
    with pytest.raises(QuotaExceeded) as refused:
        await desk.precheck(GUILD, 42, SD)
    assert refused.value.rule == "quota.cooldown"
    assert refused.value.params == {"seconds": 60, "retry_at": int(clock.now) + 61}
    clock.advance(60)
    assert await desk.precheck(GUILD, 42, SD) == 1


async def test_jobs_in_flight_are_capped_per_member_and_per_server(db, clock) -> None:
    desk, policies, _ = make(db, clock)
    first = await make_job(desk)
    await make_job(desk)
    with pytest.raises(QuotaExceeded, match=r"quota\.member_in_flight"):
        await desk.precheck(GUILD, 42, SD)
    await settle(desk, first)
    await make_job(desk)
    await policies.set_limits(GUILD, 9, server_jobs=3)
    await make_job(desk, user=43)
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk, user=44)
    assert refused.value.rule == "quota.guild_in_flight"
    assert refused.value.params == {"maximum": 3}


async def test_create_enforces_the_member_cap_again_under_its_lock(db, clock) -> None:
    """Two commands both pass precheck for the last slot: only the first create gets it."""
    desk, _, _ = make(db, clock, QuotaPolicy(daily_credits=10, max_jobs_per_member=2))
    await make_job(desk)
    assert await desk.precheck(GUILD, 42, SD) == 1  # the first command's look
    assert await desk.precheck(GUILD, 42, SD) == 1  # the second's, before either creates
    await make_job(desk)
    with pytest.raises(QuotaExceeded) as refused:
        await make_job(desk)
    assert refused.value.rule == "quota.member_in_flight"
    assert refused.value.params == {"maximum": 2}
    assert await desk.jobs.count_by_status() == {"queued": 2}
    assert (await desk.balance(GUILD, 42)).reserved == 2


async def test_grant_take_back_and_reset_are_ledger_entries(db, clock) -> None:
    desk, _, _ = make(db, clock)
    job = await make_job(desk, spec=HD)
    await settle(desk, job, JobStatus.FAILED)
    charged = await make_job(desk, spec=HD)
    for to in (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.DELIVERED):
        charged = await desk.jobs.transition(charged, to, clock())
    open_job = await make_job(desk)
    assert (await desk.balance(GUILD, 42)).remaining == 7
    balance = await desk.grant(GUILD, 42, 5, actor_id=9, reason="contest")
    assert (balance.remaining, balance.adjusted) == (12, 5)
    with pytest.raises(UserInputError) as refused:
        await desk.grant(GUILD, 42, -13, actor_id=9)
    assert refused.value.params == {"amount": 13, "remaining": 12}
    assert (await desk.grant(GUILD, 42, -12, actor_id=9)).remaining == 0
    balance = await desk.reset(GUILD, 42, actor_id=9)
    assert (balance.remaining, balance.reserved) == (9, 1)  # the open job still holds 1
    await settle(desk, open_job)
    assert (await desk.balance(GUILD, 42)).remaining == 10
    entries = await desk.ledger.recent(GUILD, 42, limit=20)
    kinds = [(e.kind.value, e.delta, e.actor_id) for e in reversed(entries)]
    assert kinds[-4:] == [("grant", 5, 9), ("grant", -12, 9), ("reset", 9, 9), ("refund", 1, None)]
    actions = [r[0] for r in await db.fetch_all("SELECT action FROM audit ORDER BY id")]
    assert actions == ["grant", "grant", "reset"]


async def test_admin_settings_are_checked_and_audited(db, clock) -> None:
    _, policies, _ = make(db, clock)
    with pytest.raises(UserInputError) as refused:
        await policies.set_timezone(GUILD, "Mars/Olympus_Mons", actor_id=9)
    assert refused.value.rule == "admin.timezone"
    with pytest.raises(UserInputError, match=r"admin\.cost_key"):
        await policies.set_cost(GUILD, (SD.model, "1080P", 10), 5, actor_id=9)
    with pytest.raises(UserInputError, match=r"admin\.range\.jobs"):
        await policies.set_limits(GUILD, 9, member_jobs=0)
    policy = await policies.set_cost(GUILD, (SD.model, "768P", 10), 5, actor_id=9)
    assert policy.cost(JobSpec(mode=Mode.TEXT, prompt="x", duration=10)) == 5
    policy = await policies.set_cost(GUILD, (SD.model, "768P", 10), None, actor_id=9)
    assert policy.cost_table() == DEFAULT_COSTS
    rows = await db.fetch_all("SELECT action, actor_id FROM audit")
    assert [tuple(r) for r in rows] == [("setting_changed", 9)] * 2


async def test_usage_counts_each_local_day_net_of_refunds(db, clock) -> None:
    desk, policies, _ = make(db, clock, QuotaPolicy(daily_credits=100, max_jobs_per_member=50))
    await policies.set_timezone(GUILD, NY, actor_id=9)
    clock.now = at(2026, 11, 25, 23, 30, tz=NY)  # already the 26th in UTC
    await make_job(desk, user=1, spec=HD)
    clock.now = at(2026, 11, 26, 9, tz=NY)
    await make_job(desk, user=2)
    await make_job(desk, user=2)
    refunded = await make_job(desk, user=3, spec=HD)
    await settle(desk, refunded, JobStatus.FAILED)
    await desk.grant(GUILD, 4, 50, actor_id=9)  # not spend
    report = await desk.usage(GUILD)
    assert report.timezone == NY and len(report.days) == 30
    assert report.days[-1] == (datetime(2026, 11, 26, tzinfo=UTC).date(), 2)
    assert report.days[-2] == (datetime(2026, 11, 25, tzinfo=UTC).date(), 2)
    assert report.top == [(1, 2), (2, 2)]
    assert (report.today, report.month) == (2, 4)


async def test_refusals_are_hailuo_errors_with_the_rules_numbers(db, clock) -> None:
    desk, _, _ = make(db, clock, QuotaPolicy(daily_credits=1))
    await make_job(desk)
    with pytest.raises(HailuoError) as refused:
        await desk.precheck(GUILD, 42, SD)
    assert dict(refused.value.params) == {
        "cost": 1,
        "remaining": 0,
        "allowance": 1,
        "renews_at": int(current_period(clock.now).renews_at),
    }


@pytest.mark.parametrize("kind", list(AllowancePeriod))
def test_current_period_kept_is_the_period_found_afresh(kind: AllowancePeriod) -> None:
    """The period kept between calls is the one found afresh, in any order of times, across
    the spring and autumn clock changes of a timezone that has them."""
    zone = "Europe/Berlin"
    spring = datetime(2026, 3, 29, 12, tzinfo=UTC).timestamp()
    autumn = datetime(2026, 10, 25, 12, tzinfo=UTC).timestamp()
    times = [base + hours * 3600.0 for base in (spring, autumn) for hours in range(-200, 200, 7)]
    Random(13).shuffle(times)
    for now in [*sorted(times), *times]:
        assert current_period(now, zone, kind) == periods._period_around(now, zone, kind)
