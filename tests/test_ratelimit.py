"""The submission limiter under rate-limit storms and sprinkles, on an injected clock.

A small model of a provider (``tests/ratelimit_model.py``) drives ``SubmitLimiter``
the way the worker does; throughput is counted in 60 s windows of simulated time.
Then the same through the worker and each provider's simulator.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hailuo.i18n.status_text import status_line
from hailuo.jobs.limiter import SubmitLimiter
from hailuo.jobs.resilience import Resilience
from hailuo.model.status import JobStatus
from tests.pg_server import BOTH_ENGINES
from tests.provider_matrix import PROVIDERS, ledger_kinds, provider_core
from tests.ratelimit_model import ModelProvider, drive, most_in_a_window
from tests.support import FakeClock

ENGINES = BOTH_ENGINES


@pytest.mark.parametrize(
    ("fixed", "provider_limit"),
    [(10, None), (10, 10), (None, 10), (5, 5), (None, 30)],
    ids=["fixed-10", "fixed-10-at-its-limit", "learned-10", "fixed-5", "learned-30"],
)
def test_ratelimit_storm_then_calm_recovers_within_two_minutes(
    clock: FakeClock, fixed: int | None, provider_limit: int | None
) -> None:
    allowed = fixed or provider_limit
    assert allowed is not None
    limiter = SubmitLimiter(clock, fixed=fixed)
    # Three minutes of calm (the rate is learned or used), three of storm, then calm.
    provider = ModelProvider(clock, limit=provider_limit, storm=(180, 360))
    run = drive(limiter, provider, clock, minutes=9, demand=3 * allowed)
    assert run.accepted_between(120, 180) >= allowed * 0.9  # the rate before the storm
    assert run.accepted_between(200, 360) == 0
    # Within two minutes of the calm: at least 90 % of the allowed rate in one minute.
    assert run.accepted_between(360 + 60, 360 + 120) >= 0.9 * allowed
    assert run.accepted_between(360 + 120, 360 + 180) >= 0.9 * allowed
    # The storm was not knocked on every two seconds: the pause doubles (up to 30 s).
    assert len(run.refused) <= 3 * 12
    if fixed is not None:
        assert most_in_a_window(run.sent) <= fixed


@pytest.mark.parametrize(
    ("fixed", "provider_limit", "share"),
    [(10, None, 0.8), (10, 10, 0.8), (5, None, 0.8), (None, 10, 0.85)],
    ids=["fixed-10", "fixed-10-at-its-limit", "fixed-5", "learned-10"],
)
def test_ratelimit_a_sprinkle_keeps_throughput_near_the_allowed_rate(
    clock: FakeClock, fixed: int | None, provider_limit: int | None, share: float
) -> None:
    allowed = fixed or provider_limit
    assert allowed is not None
    limiter = SubmitLimiter(clock, fixed=fixed)
    provider = ModelProvider(clock, limit=provider_limit, sprinkle=0.10, seed=7)
    run = drive(limiter, provider, clock, minutes=30, demand=3 * allowed)
    per_minute = run.accepted_between(60, 30 * 60) / 29
    # One answer in ten is refused at random, so at most 90 % can be accepted; the
    # limiter's own back-off costs a little more, never a collapse.
    assert per_minute >= share * allowed
    assert min(run.accepted_between(60 * m, 60 * (m + 1)) for m in range(1, 30)) >= allowed / 2
    assert limiter.limit is not None and limiter.limit >= limiter.floor
    if fixed is not None:
        assert most_in_a_window(run.sent) <= fixed


def test_ratelimit_answers_to_requests_in_flight_decrease_once(clock: FakeClock) -> None:
    limiter = SubmitLimiter(clock, fixed=20)
    assert all(limiter.acquire() for _ in range(10))
    for _ in range(4):
        limiter.succeeded()
    for _ in range(6):  # six answers to requests that were all in flight
        limiter.rate_limited(retry_after=2)
    assert limiter.limit == 10  # halved once, not 20 -> 0.3
    assert limiter.wait() == pytest.approx(2)  # paused, not for 6 x 2 s
    clock.advance(59)
    limiter.rate_limited(retry_after=2)  # still within the window of the decrease
    assert limiter.limit == 20  # climbed back meanwhile; no second decrease yet
    clock.advance(1)
    limiter.rate_limited(retry_after=2)
    assert limiter.limit == 10  # a new window: one more decrease
    assert limiter.floor == 5.0  # a quarter of the cap: it never collapses below that


def test_ratelimit_retry_after_is_honoured_and_a_storm_is_knocked_on_less_often(
    clock: FakeClock,
) -> None:
    limiter = SubmitLimiter(clock)
    limiter.acquire()
    limiter.rate_limited(retry_after=45)
    assert limiter.wait() == pytest.approx(45)
    pauses = []
    for _ in range(6):  # a storm: every probe after each pause is refused again
        clock.advance(limiter.wait())
        assert limiter.acquire()
        assert not limiter.acquire()  # one probe at a time after a rate-limit answer
        limiter.rate_limited(retry_after=2)
        pauses.append(round(limiter.wait()))
    assert pauses == [4, 8, 16, 30, 30, 30]
    clock.advance(30)
    assert limiter.acquire()
    limiter.succeeded()  # the calm: the doubling ends with the first success
    limiter.acquire()
    limiter.rate_limited(retry_after=2)
    assert limiter.wait() == pytest.approx(2)


def test_ratelimit_schedule_follows_the_current_rate(clock: FakeClock) -> None:
    limiter = SubmitLimiter(clock, fixed=5)
    assert limiter.schedule(3) == [clock()] * 3  # free slots: now
    for _ in range(5):
        limiter.acquire()
        clock.advance(6)  # five sent, 6 s apart
    start = clock() - 30
    assert limiter.schedule(6) == [start + 60 + 6 * i for i in range(5)] + [start + 120]
    limiter.rate_limited(retry_after=20)
    # Paused for 20 s and halved to 2.5 a minute: the queue's waiting times grow.
    later = limiter.schedule(3)
    assert later[0] >= clock() + 20
    assert later[2] - later[0] >= 60


@settings(max_examples=200, deadline=None)
@given(
    fixed=st.integers(min_value=1, max_value=12),
    events=st.lists(
        st.one_of(
            st.tuples(st.just("advance"), st.floats(min_value=0, max_value=40)),
            st.tuples(st.just("acquire"), st.integers(min_value=1, max_value=15)),
            st.tuples(st.just("ok"), st.just(0)),
            st.tuples(st.just("limited"), st.one_of(st.none(), st.floats(0, 120))),
            st.tuples(st.just("answered"), st.just(0)),
        ),
        max_size=120,
    ),
)
def test_ratelimit_a_fixed_cap_is_never_exceeded_in_any_60_s_window(
    fixed: int, events: list[tuple[str, object]]
) -> None:
    clock = FakeClock()
    limiter = SubmitLimiter(clock, fixed=fixed)
    sent: list[float] = []
    for kind, value in events:
        if kind == "advance":
            assert isinstance(value, float)
            clock.advance(value)
        elif kind == "acquire":
            assert isinstance(value, int)
            sent.extend(clock() for _ in range(value) if limiter.acquire())
        elif kind == "ok":
            limiter.succeeded()
        elif kind == "limited":
            limiter.rate_limited(value if isinstance(value, float) else None)
        else:
            limiter.answered()
        assert most_in_a_window(sent) <= fixed
        limit = limiter.limit
        assert limit is not None and limiter.floor <= limit <= fixed


# -- through the worker and the provider simulators -------------------------------------


@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_ratelimit_storm_then_calm_drains_the_queue(db, clock: FakeClock, name: str) -> None:
    """Twelve members' jobs meet fifteen rate-limit answers in a row, then a calm."""
    async with provider_core(name, db, clock) as (sim, core):
        sim.inject("submit", "http_429", times=15)
        jobs = [await core.new_job(user_id=user) for user in range(1, 13)]
        # (a regular kind is asked once, at the end of its learned run time: the last
        # jobs, accepted after the storm, take a learned run or two to be seen done)
        for _ in range(900):
            states = [(await core.jobs.get(job.id)) for job in jobs]
            if all(s is not None and s.status is JobStatus.DELIVERED for s in states):
                break
            await core.worker.tick()
            clock.advance(1)
        else:
            raise AssertionError(f"not drained: {[s.status for s in states if s]}")
        assert sim.faults.pending("submit") == 0  # the storm was met in full
        assert len(sim.submits) == 12  # each job accepted once, none lost
        for job in jobs:
            assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
        # While they waited, the cards showed each job's place and its waiting time.
        waiting = [v for v in core.notifier.statuses if v.job.status is JobStatus.QUEUED]
        assert {v.queue_position for v in waiting} >= {1, 2, 3}
        assert all(v.queue_eta is not None for v in waiting if v.queue_position)
        limit = core.worker.resilience.limiter(name).limit
        assert limit is None or limit >= core.worker.resilience.limiter(name).floor


async def test_ratelimit_queued_cards_show_a_wait_that_follows_the_rate(
    db, clock: FakeClock
) -> None:
    resilience = Resilience(clock, ["minimax"], caps={"minimax": 2})
    async with provider_core("minimax", db, clock, core_options={"resilience": resilience}) as (
        _,
        core,
    ):
        jobs = [await core.new_job(user_id=user) for user in (1, 2, 3, 4, 5)]
        await core.worker.tick()
        shown = {v.job.id: v for v in core.notifier.statuses if v.job.status is JobStatus.QUEUED}
        waits = [shown[job.id] for job in jobs[2:]]
        assert [v.queue_position for v in waits] == [1, 2, 3]
        # Two a minute: the first two went now, the next two in a minute, the fifth in two.
        assert [v.queue_eta for v in waits] == [60, 60, 120]
        assert [status_line(v.job, v.queue_position, v.queue_eta) for v in waits] == [
            "Queued (position 1, about 1 min)",
            "Queued (position 2, about 1 min)",
            "Queued (position 3, about 2 min)",
        ]
        zh = dataclasses.replace(waits[0].job, locale="zh-CN")
        assert status_line(zh, 1, 30) == "排队中（第 1 位，不到一分钟）"
        assert status_line(zh, 2, 61) == "排队中（第 2 位，约 2 分钟）"
