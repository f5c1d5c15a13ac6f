"""Shared limits: one provider's submission rate and circuit for every process, and the
money caps held by the database, not by a process (issue 14, item 4).

Two processes (two connections to one SQLite file, each with its own limiter and
breaker built from the same settings) never send more than the fixed ceiling together,
skip a circuit the other opened, and cannot both take a member's last credit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hailuo.jobs.resilience import CircuitState, Resilience
from hailuo.jobs.shared_limits import SharedLimits
from hailuo.model.errors import ProviderError, ProviderErrorKind, QuotaExceeded
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from storage.db import Database
from tests.processes import Process, two_processes
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock

CAP = 2  # MINIMAX_SUBMITS_PER_MINUTE, in each process's settings
WINDOW = 60.0


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []


async def all_delivered(process: Process, ids: list[int]) -> bool:
    found = [await process.core.jobs.get(job_id) for job_id in ids]
    return all(job is not None and job.status is JobStatus.DELIVERED for job in found)


async def test_two_processes_never_exceed_a_fixed_ceiling_together_shared_limit(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    async with two_processes(tmp_path / "one.sqlite3", clock, sim, caps={"minimax": CAP}) as (
        a,
        b,
    ):
        ids = [(await (a if i % 2 else b).core.new_job(user_id=i)).id for i in range(8)]
        sent: list[tuple[float, int]] = []  # (when, submissions the provider saw then)
        for _ in range(120):
            if await all_delivered(a, ids):
                break
            before = len(sim.requests_to("submit"))
            await asyncio.gather(a.core.worker.tick(), b.core.worker.tick())
            sent.append((clock(), len(sim.requests_to("submit")) - before))
            clock.advance(5)
        assert await all_delivered(a, ids)
        assert len(sim.submits) == len(ids)
        busiest = max(sum(n for at, n in sent if now - WINDOW < at <= now) for now, _ in sent)
        # Each process alone would send CAP a minute: together they still send CAP.
        assert busiest == CAP
        sent_by = [p.core.metrics.provider_calls[("minimax", "submit", "ok")] for p in (a, b)]
        assert sum(sent_by) == len(ids)


async def test_a_circuit_one_process_opened_is_skipped_by_the_other_shared_limit(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    async with two_processes(tmp_path / "one.sqlite3", clock, sim) as (a, b):
        for user in range(3):
            await a.core.new_job(user_id=user)
        sim.inject("submit", "http_503", times=4)
        await a.core.worker.tick()  # three provider failures in a row: a opens the circuit
        assert a.core.worker.resilience.breaker("minimax").state is CircuitState.OPEN
        assert len(sim.requests_to("submit")) == 3

        await b.core.worker.tick()  # b never saw a failure itself
        assert b.core.worker.resilience.breaker("minimax").state is CircuitState.OPEN
        assert len(sim.requests_to("submit")) == 3  # and sent nothing to the sick provider

        # Half-open after the pause: one probe goes, from one process only; it fails, and
        # the circuit opens again for both.
        clock.advance(31)
        await asyncio.gather(a.core.worker.tick(), b.core.worker.tick())
        assert len(sim.requests_to("submit")) == 4
        for process in (a, b):
            await process.core.worker.tick()
            assert process.core.worker.resilience.breaker("minimax").state is CircuitState.OPEN
        assert len(sim.requests_to("submit")) == 4

        # The next probe is accepted: closed for both.
        clock.advance(61)
        await asyncio.gather(a.core.worker.tick(), b.core.worker.tick())
        assert len(sim.submits) >= 1
        for process in (a, b):
            await process.core.worker.tick()
            assert process.core.worker.resilience.breaker("minimax").state is CircuitState.CLOSED


async def test_a_members_credits_and_caps_hold_across_processes_shared_limit(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    policy = QuotaPolicy(daily_credits=3, max_jobs_per_member=10, max_jobs_per_guild=5)
    async with two_processes(tmp_path / "one.sqlite3", clock, sim, policy=policy) as (a, b):

        async def attempt(process: Process, user: int) -> bool:
            try:
                await process.core.new_job(user_id=user)
            except QuotaExceeded:
                return False
            return True

        # One member asks for 8 one-credit jobs through both processes at once: 3 credits.
        made = await asyncio.gather(*(attempt((a, b)[i % 2], 7) for i in range(8)))
        assert sum(made) == 3
        usage = await a.core.desk.balance(1, 7)
        assert (usage.reserved, usage.remaining) == (3, 0)
        # The server's in-flight cap (5) across processes: 2 more from others, not 8.
        made = await asyncio.gather(*(attempt((a, b)[i % 2], 100 + i) for i in range(8)))
        assert sum(made) == 2
        counts = await b.core.jobs.count_by_status()
        assert counts == {"queued": 5}


async def test_one_processes_concurrent_submissions_all_count_shared_limit(
    db: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's concurrent submissions in one process each take a slot and each
    share their outcome: none loses a compare-and-set round to its own process."""
    many = 30
    resilience = Resilience(clock, ["minimax"], caps={"minimax": 100}, threshold=many + 1)
    shared = SharedLimits(resilience, db.limits, clock)
    await shared.pull()
    caplog.set_level(logging.WARNING, logger="hailuo.jobs.shared_limits")

    taken = await asyncio.gather(*(shared.reserve("minimax") for _ in range(many)))
    assert all(taken)
    failed = ProviderError(ProviderErrorKind.UNAVAILABLE, provider="minimax")
    await asyncio.gather(*(shared.record("minimax", failed) for _ in range(many)))

    # What another process would take over: every slot and every failure, none lost.
    other = Resilience(clock, ["minimax"], caps={"minimax": 100}, threshold=many + 1)
    await SharedLimits(other, db.limits, clock).pull()
    assert other.breaker("minimax").failures == many
    assert len(other.limiter("minimax").snapshot()["sent"]) == many
    assert "contended" not in caplog.text
