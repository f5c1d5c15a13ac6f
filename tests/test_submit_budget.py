"""Submissions are retried on a budget of time: outages, failover after ~30 s, the queue bound.

Through the real core (SQLite, worker, adapters) against the loopback provider
simulators; the clock is moved by hand. An outage "for 40 s" keeps one HTTP 500
queued at the simulator's submit route while the clock is inside it, so every
submission in that time is refused and the first after it is accepted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hailuo.i18n.messages import render
from hailuo.i18n.status_text import status_line
from hailuo.jobs.resilience import Resilience
from hailuo.jobs.submitting import QUEUE_TIMEOUT
from hailuo.jobs.worker import WorkerConfig
from hailuo.model.status import JobStatus
from hailuo.settings import SettingsError, load_settings
from providers.minimax import MiniMaxProvider
from tests.core import Core, build_core
from tests.pg_server import BOTH_ENGINES
from tests.provider_matrix import PROVIDERS, ledger_kinds, provider_core
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock

ENGINES = BOTH_ENGINES

A, B = "minimax", "gptge"  # both speak MiniMax's API here, as in tests/test_failover.py


class Outage:
    """A provider's submit route answers ``fault`` from now until ``seconds`` later."""

    def __init__(self, sim: Any, clock: FakeClock, seconds: float, fault: str = "http_500"):
        self.sim = sim
        self.clock = clock
        self.ends = clock() + seconds
        self.fault = fault

    def keep(self) -> None:
        """Before each tick: one fault queued while the outage lasts, none after it."""
        pending = self.sim.faults.pending("submit")
        if self.clock() < self.ends and pending == 0:
            self.sim.inject("submit", self.fault)
        elif self.clock() >= self.ends and pending:
            self.sim.faults.pop("submit")


async def run(core: Core, job_id: int, *states: JobStatus, outage: Outage, step: float = 1.0):
    """Tick the worker a simulated second at a time until the job reaches ``states``."""
    moves: list[tuple[float, str | None, JobStatus]] = []
    for _ in range(3000):
        job = await core.jobs.get(job_id)
        assert job is not None
        if not moves or moves[-1][1:] != (job.provider, job.status):
            moves.append((core.clock() - outage.ends + 40, job.provider, job.status))
        if job.status in states:
            return job, moves
        outage.keep()
        await core.worker.tick()
        core.clock.advance(step)
    raise AssertionError(f"job {job_id} stuck: {moves[-5:]}")


@contextlib.asynccontextmanager
async def pair_of(
    db, clock, **core_options: Any
) -> AsyncIterator[tuple[MiniMaxSimulator, MiniMaxSimulator, Core]]:
    async with (
        MiniMaxSimulator(clock=clock) as a,
        MiniMaxSimulator(clock=clock) as b,
        aiohttp.ClientSession() as session,
    ):
        providers = {
            A: MiniMaxProvider(session, api_key=a.api_key, base_url=a.base_url),
            B: MiniMaxProvider(session, api_key=b.api_key, base_url=b.base_url),
        }
        yield a, b, build_core(db, clock, session, providers, **core_options)
    assert a.violations == [] and b.violations == []


@pytest.fixture
async def pair(db, clock) -> AsyncIterator[tuple[MiniMaxSimulator, MiniMaxSimulator, Core]]:
    async with pair_of(db, clock) as built:
        yield built


@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_submit_budget_500s_for_40_s_then_recovery_delivers_once(db, clock, name) -> None:
    async with provider_core(name, db, clock) as (sim, core):
        outage = Outage(sim, clock, 40)
        job = await core.new_job()
        job, moves = await run(core, job.id, JobStatus.DELIVERED, outage=outage)
        assert len(sim.submits) == 1  # accepted once, after the outage
        assert len(sim.requests_to("submit")) >= 3  # refused while it lasted, retried
        assert await ledger_kinds(db, job.id) == ["reserve", "charge"]  # not refunded
        # Between the attempts the job stayed queued, and its card said so with a wait.
        assert JobStatus.FAILED not in [status for _, _, status in moves]
        waits = [v for v in core.notifier.statuses if v.job.status is JobStatus.QUEUED]
        assert any(v.queue_position == 1 and v.queue_eta is not None for v in waits)


async def test_submit_budget_fails_over_after_about_30_s_of_an_unhealthy_provider(
    db, clock
) -> None:
    # A circuit that never opens, so only the patience moves the job.
    never_opens = Resilience(clock, [A, B], threshold=1000)
    async with pair_of(db, clock, resilience=never_opens) as (a, b, core):
        outage = Outage(a, core.clock, 40)
        job = await core.new_job()
        job, moves = await run(core, job.id, JobStatus.DELIVERED, outage=outage)
    assert job.provider == B and job.provider_meta["given_up"] == [A]
    moved_at = next(at for at, provider, status in moves if provider == B)
    assert 30 <= moved_at <= 40  # about 30 s of failures at A, then B
    assert a.submits == [] and len(b.submits) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]


async def test_submit_budget_an_open_circuit_fails_over_sooner(pair, db) -> None:
    a, b, core = pair
    outage = Outage(a, core.clock, 40)
    job = await core.new_job()
    job, moves = await run(core, job.id, JobStatus.DELIVERED, outage=outage)
    moved_at = next(at for at, provider, status in moves if provider == B)
    assert moved_at <= 30  # three failures in a row open A's circuit: no need to wait
    assert job.provider == B and a.submits == [] and len(b.submits) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]


async def test_submit_budget_a_provider_that_never_recovers_fails_with_a_refund_at_the_bound(
    db, clock
) -> None:
    async with MiniMaxSimulator(clock=clock) as sim, aiohttp.ClientSession() as session:
        provider = MiniMaxProvider(session, api_key=sim.api_key, base_url=sim.base_url)
        config = WorkerConfig(poll_seconds=5, queue_deadline=600)
        core = build_core(db, clock, session, {A: provider}, config=config)
        outage = Outage(sim, clock, 10_000)
        job = await core.new_job()
        queued_at = clock()
        job, moves = await run(core, job.id, JobStatus.FAILED, outage=outage, step=5)
    waited = moves[-1][0] - (queued_at - outage.ends + 40)
    assert 600 <= waited <= 610  # at the bound, not before, not much after
    assert job.failure_rule == QUEUE_TIMEOUT
    assert job.failure_params == {"minutes": 10, "providers": [A]}
    assert sim.submits == [] and len(sim.requests_to("submit")) >= 5
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
    assert status_line(job) == (
        "Failed: No provider took this video within 10 minutes (minimax: busy or down). "
        "1 credit refunded to you."
    )
    assert "10 分钟内没有服务商接下这个视频（minimax" in render(
        QUEUE_TIMEOUT, "zh-CN", **job.failure_params
    )
    assert core.notifier.statuses[-1].job.status is JobStatus.FAILED


async def test_submit_budget_an_unknown_outcome_is_still_never_resent(pair, db) -> None:
    a, b, core = pair
    a.inject("submit", "accept_then_drop")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.interrupted_submit"
    assert len(a.requests_to("submit")) == 1 and b.requests == []
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


def test_submit_budget_queue_timeout_setting() -> None:
    base = {"DISCORD_TOKEN": "x", "MINIMAX_API_KEY": "k"}
    assert load_settings(base, None).queue_timeout == 1800
    assert load_settings({**base, "HAILUO_QUEUE_TIMEOUT": "600"}, None).queue_timeout == 600
    with pytest.raises(SettingsError, match="HAILUO_QUEUE_TIMEOUT"):
        load_settings({**base, "HAILUO_QUEUE_TIMEOUT": "10"}, None)
