"""The shared resilience: submission limiter (fixed and learned), circuit breaker, retry table."""

from __future__ import annotations

import logging
import random

import pytest

from hailuo.jobs.limiter import SubmitLimiter
from hailuo.jobs.resilience import AccountAlerts, CircuitBreaker, CircuitState, Resilience
from hailuo.jobs.retry import Backoff, poll_interval
from hailuo.model.errors import ProviderError, ProviderErrorKind
from tests.support import FakeClock


def error(kind: ProviderErrorKind, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, provider="p", retry_after=retry_after)


# -- limiter ------------------------------------------------------------------------------


def test_fixed_cap_allows_that_many_per_sliding_minute(clock: FakeClock) -> None:
    limiter = SubmitLimiter(clock, fixed=5)
    assert [limiter.acquire() for _ in range(6)] == [True] * 5 + [False]
    assert limiter.wait() == pytest.approx(60)
    clock.advance(30)
    assert limiter.acquire() is False
    assert limiter.wait() == pytest.approx(30)
    clock.advance(30)
    assert limiter.acquire() is True  # the first slot left the window
    # Never more than 5 in any 60 s window, spread or burst.
    for _ in range(200):
        clock.advance(7)
        limiter.acquire()
        assert len([t for t in limiter._admitted if t > clock() - 60]) <= 5


def test_ratelimit_fixed_cap_pauses_halves_and_climbs_back_to_the_cap(clock: FakeClock) -> None:
    limiter = SubmitLimiter(clock, fixed=5, recover_seconds=30)
    assert limiter.acquire()
    limiter.rate_limited(retry_after=10)
    assert limiter.limit == 2.5  # halved, under the cap
    assert limiter.wait() == pytest.approx(10)  # the provider's Retry-After, for everyone
    clock.advance(10)
    assert limiter.acquire()
    clock.advance(6)  # the climb: 5 a minute more per 30 s, from the end of the pause
    assert limiter.limit == pytest.approx(3.5)
    clock.advance(30)
    assert limiter.limit == 5  # back to the cap, never past it
    for _ in range(20):
        limiter.succeeded()
    assert limiter.limit == 5


def test_ratelimit_learned_limit_halves_climbs_back_then_probes_and_lifts(
    clock: FakeClock,
) -> None:
    limiter = SubmitLimiter(clock, ceiling=12, default_pause=2, recover_seconds=30)
    assert limiter.limit is None
    assert all(limiter.acquire() for _ in range(10))  # nothing known: no limit
    for _ in range(9):
        limiter.succeeded()
    limiter.rate_limited()  # the 10th was one too many
    assert limiter.limit == 5  # half of what was going through
    assert limiter.target == 9  # what the provider accepted in that minute
    assert limiter.wait() > 2  # a pause, and 9 went out in this minute with a limit of 5
    clock.advance(12)
    assert limiter.limit == pytest.approx(8)  # climbing: 9 a minute more per 30 s
    clock.advance(50)
    assert limiter.limit == 9  # back to the rate served, then only probing above it
    assert [limiter.acquire() for _ in range(2)] == [True, False]  # one probe first
    limiter.succeeded()
    assert [limiter.acquire() for _ in range(9)] == [True] * 8 + [False]
    for _ in range(8):
        limiter.succeeded()
    assert 9 < limiter.limit < 10.5  # about one more per window of successes
    steps = 0
    while limiter.limit is not None:  # probing while the limit is what holds them back
        steps += 1
        assert steps < 500
        clock.advance(1)
        for _ in range(5):
            if limiter.acquire():
                limiter.succeeded()
    assert steps > 60  # gently: past 12 (the ceiling) only after minutes of successes
    # Lifted: nothing limits submissions until the next rate-limit answer.


def test_learned_limit_never_goes_below_the_floor(clock: FakeClock) -> None:
    limiter = SubmitLimiter(clock)
    for _ in range(10):
        limiter.acquire()
        limiter.rate_limited(retry_after=1)
        clock.advance(1)
    assert limiter.limit == 1
    clock.advance(60)
    assert limiter.acquire()


def test_a_rate_limit_with_retry_after_pauses_everyone(clock: FakeClock) -> None:
    limiter = SubmitLimiter(clock, fixed=10)
    limiter.acquire()
    limiter.rate_limited(retry_after=20)
    assert limiter.acquire() is False
    clock.advance(20)
    assert limiter.acquire() is True


# -- breaker ------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_half_opens(clock: FakeClock) -> None:
    changes: list[tuple[str, CircuitState]] = []
    breaker = CircuitBreaker(clock, name="a", threshold=3, open_seconds=30)
    breaker.on_change = lambda name, state: changes.append((name, state))
    breaker.failure()
    breaker.failure()
    breaker.success()  # not consecutive any more
    breaker.failure()
    breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.failure()
    assert breaker.state is CircuitState.OPEN and not breaker.available()
    assert breaker.reopens_in() == pytest.approx(30)
    clock.advance(30)
    assert breaker.state is CircuitState.HALF_OPEN and breaker.available()
    breaker.begin()
    assert not breaker.available()  # one probe at a time
    breaker.failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.reopens_in() == pytest.approx(60)  # twice as long
    clock.advance(60)
    breaker.begin()
    breaker.success()
    assert breaker.state is CircuitState.CLOSED and breaker.available()
    assert changes == [
        ("a", CircuitState.OPEN),
        ("a", CircuitState.OPEN),
        ("a", CircuitState.CLOSED),
    ]


def test_a_lost_probe_is_replaced_after_the_probe_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock, threshold=1, open_seconds=10, probe_timeout=120)
    breaker.failure()
    clock.advance(10)
    breaker.begin()
    clock.advance(119)
    assert not breaker.available()
    clock.advance(1)
    assert breaker.available()


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (ProviderErrorKind.UNAVAILABLE, CircuitState.OPEN),
        (ProviderErrorKind.BAD_REPLY, CircuitState.OPEN),
        (ProviderErrorKind.UNKNOWN_OUTCOME, CircuitState.OPEN),
        (ProviderErrorKind.RATE_LIMITED, CircuitState.CLOSED),  # the limiter's business
        (ProviderErrorKind.MODERATION, CircuitState.CLOSED),  # about the request
        (ProviderErrorKind.INVALID_REQUEST, CircuitState.CLOSED),
        (ProviderErrorKind.NOT_FOUND, CircuitState.CLOSED),
    ],
)
def test_only_provider_side_failures_open_the_circuit(
    clock: FakeClock, kind: ProviderErrorKind, state: CircuitState
) -> None:
    resilience = Resilience(clock, ["a"], threshold=3)
    for _ in range(5):
        resilience.record_submit("a", error(kind))
    assert resilience.breaker("a").state is state


@pytest.mark.parametrize("kind", [ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE])
def test_a_rejected_key_or_empty_balance_opens_at_once_for_longer(
    clock: FakeClock, kind: ProviderErrorKind
) -> None:
    resilience = Resilience(clock, ["a"])
    resilience.record_submit("a", error(kind))
    assert resilience.breaker("a").state is CircuitState.OPEN
    assert resilience.breaker("a").reopens_in() == pytest.approx(600)


def test_admit_skips_an_open_circuit_but_waits_for_a_full_limiter(clock: FakeClock) -> None:
    resilience = Resilience(clock, ["a", "b"], caps={"a": 1}, threshold=1)
    assert resilience.admit(["a", "b"]) == "a"
    # "a" is out of slots: wait for it, never spend at "b" because of a rate limit.
    assert resilience.admit(["a", "b"]) is None
    resilience.record_submit("a", error(ProviderErrorKind.UNAVAILABLE))
    assert resilience.admit(["a", "b"]) == "b"  # "a" is open-circuited: move on
    resilience.record_submit("b", error(ProviderErrorKind.UNAVAILABLE))
    assert resilience.admit(["a", "b"]) is None  # both open: wait
    clock.advance(60)
    assert resilience.admit(["a", "b"]) == "a"  # half-open probe, and a slot is free again
    assert resilience.admit(["a"]) is None  # the probe is out


def test_account_alerts_once_per_provider_per_hour(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, ProviderErrorKind]] = []
    alerts = AccountAlerts(clock, on_alert=lambda p, k: seen.append((p, k)))
    with caplog.at_level(logging.ERROR, logger="hailuo.jobs.resilience"):
        assert alerts.report("minimax", ProviderErrorKind.BALANCE)
        assert not alerts.report("minimax", ProviderErrorKind.BALANCE)
        assert alerts.report("freepik", ProviderErrorKind.AUTH)
        clock.advance(3599)
        assert not alerts.report("minimax", ProviderErrorKind.AUTH)
        clock.advance(1)
        assert alerts.report("minimax", ProviderErrorKind.AUTH)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "out of balance" in errors[0] and "FREEPIK_API_KEY" in errors[1]
    assert seen == [
        ("minimax", ProviderErrorKind.BALANCE),
        ("freepik", ProviderErrorKind.AUTH),
        ("minimax", ProviderErrorKind.AUTH),
    ]


# -- retry: the pure decision, as a table ---------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 2.0),
        (2, None, 4.0),
        (3, None, 8.0),
        (5, None, 32.0),
        (6, None, 60.0),  # capped
        (50, None, 60.0),
        (0, None, 2.0),  # attempt numbers below 1 are treated as the first
        (1, 30.0, 30.0),  # never earlier than the provider asked
        (6, 5.0, 60.0),  # but a short Retry-After does not shorten the back-off
        (1, 0.0, 2.0),
    ],
)
def test_backoff_without_jitter(attempt: int, retry_after: float | None, expected: float) -> None:
    rng = random.Random(1)
    assert Backoff(jitter=0).delay(attempt, rng, retry_after) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8])
def test_backoff_jitter_stays_within_a_quarter(attempt: int) -> None:
    rng = random.Random(attempt)
    raw = Backoff(jitter=0).delay(attempt, rng)
    for _ in range(200):
        assert 0.75 * raw <= Backoff().delay(attempt, rng) <= 1.25 * raw


@pytest.mark.parametrize(
    ("age", "expected"), [(0, 5), (119, 5), (120, 10), (599, 10), (600, 20), (10_000, 20)]
)
def test_poll_interval_widens_with_age(age: float, expected: float) -> None:
    assert poll_interval(age, 5) == expected


def test_a_refused_submission_does_not_hold_a_slot(clock: FakeClock) -> None:
    """The first 429 must cost the Retry-After pause, not a whole minute."""
    limiter = SubmitLimiter(clock)
    assert limiter.acquire()
    limiter.rate_limited(retry_after=2)
    assert limiter.wait() == pytest.approx(2)
    clock.advance(2)
    assert limiter.wait() == 0
    assert limiter.acquire()
