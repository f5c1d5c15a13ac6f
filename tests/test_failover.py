"""Failover between providers, through the real core, with two MiniMax simulators.

Provider A is registered as ``minimax`` and B as ``gptge`` (both speak MiniMax's API
here), so the failover order is minimax, then gptge.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hailuo.jobs.resilience import CircuitState, Resilience
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from providers.minimax import MiniMaxProvider
from storage.ledger import LedgerRepository
from tests.core import Core, build_core
from tests.pg_server import BOTH_ENGINES
from tests.sims.minimax import MiniMaxSimulator

ENGINES = BOTH_ENGINES

A, B = "minimax", "gptge"


@pytest.fixture
async def sims(clock) -> AsyncIterator[tuple[MiniMaxSimulator, MiniMaxSimulator]]:
    async with MiniMaxSimulator(clock=clock) as a, MiniMaxSimulator(clock=clock) as b:
        yield a, b
    assert a.violations == [] and b.violations == []


@contextlib.asynccontextmanager
async def core_of(db, clock, sims, **core_options: Any) -> AsyncIterator[Core]:
    a, b = sims
    async with aiohttp.ClientSession() as session:
        providers = {
            A: MiniMaxProvider(session, api_key=a.api_key, base_url=a.base_url),
            B: MiniMaxProvider(session, api_key=b.api_key, base_url=b.base_url),
        }
        yield build_core(db, clock, session, providers, **core_options)


@pytest.fixture
async def core(db, clock, sims) -> AsyncIterator[Core]:
    async with core_of(db, clock, sims) as built:
        yield built


async def ledger(db, job_id: int) -> list[str]:
    return [e.kind.value for e in await LedgerRepository(db).for_job(job_id)]


async def test_a_down_goes_to_b_once_and_opens_a_circuit(core: Core, sims) -> None:
    a, b = sims
    a.inject("submit", "http_503", times=20)
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUBMITTED)
    assert job.provider == B
    assert len(a.requests_to("submit")) == 3  # three in a row open the circuit
    assert core.worker.resilience.breaker(A).state is CircuitState.OPEN
    assert core.metrics.provider_calls[(A, "circuit", "open")] == 1
    # A new job goes straight to the first healthy provider while A's circuit is open.
    second = await core.new_job(user_id=43)
    await core.worker.tick()
    second = await core.jobs.get(second.id)
    assert second is not None and second.provider == B
    assert len(a.requests_to("submit")) == 3
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert job.provider == B and a.submits == []
    assert len(b.requests_to("submit")) == 2 and len(b.submits) == 2  # once per job
    assert job.submit_attempts == 4


async def test_a_accepting_then_failing_is_never_resubmitted_to_b(core: Core, sims, db) -> None:
    a, b = sims
    a.inject("query", "generation_failed")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.provider == A and job.provider_task_id in a.tasks
    assert job.failure_rule == "provider.moderation"
    assert b.requests == []
    assert await ledger(db, job.id) == ["reserve", "refund"]


async def test_an_unknown_submit_outcome_at_a_is_not_moved_to_b(core: Core, sims) -> None:
    a, b = sims
    a.inject("submit", "accept_then_drop")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.interrupted_submit"
    assert b.requests == []


@pytest.mark.parametrize(
    ("fault", "words"), [("no_balance", "out of balance"), ("invalid_key", "MINIMAX_API_KEY")]
)
async def test_a_out_of_balance_or_key_rejected_moves_to_b_at_once_and_tells_admins(
    core: Core, sims, caplog: pytest.LogCaptureFixture, fault: str, words: str
) -> None:
    a, _ = sims
    a.inject("submit", fault, times=5)
    job = await core.new_job()
    with caplog.at_level(logging.ERROR):
        await core.worker.tick()  # refused by A
        await core.worker.tick()  # at once (the clock has not moved) to B
        job = await core.jobs.get(job.id)
        assert job is not None and job.status is JobStatus.SUBMITTED and job.provider == B
        assert job.provider_meta["given_up"] == [A]
        second = await core.new_job(user_id=43)
        await core.worker.tick()
    second = await core.jobs.get(second.id)
    assert second is not None and second.provider == B  # A's circuit is open: not tried
    assert len(a.requests_to("submit")) == 1
    alerts = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(alerts) == 1 and words in alerts[0]
    kind = "balance" if fault == "no_balance" else "auth"
    assert core.metrics.provider_calls[(A, "admin_alert", kind)] == 1
    assert a.api_key not in "".join(alerts)


async def test_a_spec_only_b_can_serve_goes_to_b(db, clock, sims) -> None:
    a, _ = sims

    def serves(name: str, spec: JobSpec) -> bool:
        return name == B or spec.resolution != "1080P"

    async with core_of(db, clock, sims, serves=serves) as core:
        job = await core.new_job(JobSpec(mode=Mode.TEXT, prompt="a cat", resolution="1080P"))
        job = await core.run_until(job.id, JobStatus.DELIVERED)
        assert job.provider == B and a.requests == []
        other = await core.new_job(JobSpec(mode=Mode.TEXT, prompt="a dog"), user_id=43)
        other = await core.run_until(other.id, JobStatus.DELIVERED)
        assert other.provider == A


async def test_no_capable_provider_fails_with_a_refund(db, clock, sims) -> None:
    async with core_of(db, clock, sims, serves=lambda name, spec: False) as core:
        job = await core.new_job()
        job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.no_provider"
    assert await ledger(db, job.id) == ["reserve", "refund"]


async def test_rate_limits_never_move_or_fail_a_job(core: Core, sims) -> None:
    a, b = sims
    a.inject("submit", "rate_limit", times=3)
    a.inject("submit", "http_429")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert job.provider == A and b.requests == []
    assert len(a.requests_to("submit")) == 5
    assert core.worker.resilience.limiter(A).limit is not None  # it learned a limit


async def test_the_last_provider_is_retried_past_the_patience(db, clock, sims) -> None:
    a, _ = sims
    a.inject("submit", "http_503", times=4)  # three open the circuit, the first probe fails
    async with aiohttp.ClientSession() as session:
        provider = MiniMaxProvider(session, api_key=a.api_key, base_url=a.base_url)
        core = build_core(db, clock, session, {A: provider})
        job = await core.new_job()
        job = await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert len(a.requests_to("submit")) == 5 and len(a.submits) == 1


async def test_queued_jobs_wait_for_the_limiter_and_see_their_position(db, clock, sims) -> None:
    a, _ = sims
    one_a_minute = Resilience(clock, [A, B], caps={A: 1})
    async with core_of(db, clock, sims, resilience=one_a_minute) as core:
        jobs = [await core.new_job(user_id=user) for user in (1, 2, 3)]
        await core.worker.tick()
        first, second, third = [await core.jobs.get(j.id) for j in jobs]
        assert first is not None and first.status is JobStatus.SUBMITTED
        assert second is not None and second.status is JobStatus.QUEUED
        assert third is not None and third.status is JobStatus.QUEUED
        shown = {(v.job.id, v.queue_position) for v in core.notifier.statuses}
        assert {(second.id, 1), (third.id, 2)} <= shown
        core.clock.advance(30)
        await core.worker.tick()  # still no slot: nothing new to show, nothing submitted
        assert len(a.requests_to("submit")) == 1
        core.clock.advance(30)
        await core.worker.tick()
        second = await core.jobs.get(second.id)
        assert second is not None and second.status is JobStatus.SUBMITTED
        assert core.notifier.statuses[-1].job.id in (second.id, third.id)
        assert (third.id, 1) in {(v.job.id, v.queue_position) for v in core.notifier.statuses}
