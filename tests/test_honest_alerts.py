"""Honest messages about the bot's own account trouble (issue 15, item 4): ``pytest -k honest``.

A refused key or an empty balance is told to the server's admins in its log channel once
per incident (until the provider accepts a submission again), to the operator's log, and
the member reads the truth: the bot cannot reach its video service, and the credits came
back. Through the real core and the MiniMax simulator here; through Discord in
``tests/test_honest_e2e.py``.
"""

from __future__ import annotations

import pytest

from hailuo.jobs.worker import WorkerConfig
from hailuo.model.status import JobStatus
from tests.core import Core
from tests.pg_server import BOTH_ENGINES
from tests.provider_matrix import ledger_kinds, provider_core
from tests.support import FakeClock

ENGINES = BOTH_ENGINES

LOG_CHANNEL = 777


@pytest.fixture
async def world(db, clock: FakeClock):
    async with provider_core("minimax", db, clock) as (sim, core):
        await db.moderation.update(1, {"log_channel_id": LOG_CHANNEL}, actor_id=None, now=clock())
        yield sim, core


async def failed(core: Core, clock: FakeClock) -> None:
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED, JobStatus.DELIVERED, steps=400)
    await core.worker.drain()
    return job


async def test_honest_account_alert_once_per_incident(world, db, clock) -> None:
    sim, core = world
    sim.inject("submit", "no_balance", times=2)
    first = await failed(core, clock)
    assert first.status is JobStatus.FAILED
    assert first.failure_rule == "job.service_unreachable"
    assert await ledger_kinds(db, first.id) == ["reserve", "refund"]
    told = [n for n in core.notifier.notices if n.rule == "notice.provider_balance"]
    assert len(told) == 1
    assert told[0].log_channel_id == LOG_CHANNEL and told[0].channel_id is None
    assert told[0].params == {"provider": "minimax"}

    clock.advance(3600)  # the circuit reopens; the account is still empty: the same incident
    second = await failed(core, clock)
    assert second.failure_rule == "job.service_unreachable"
    assert len([n for n in core.notifier.notices if n.rule.startswith("notice.provider")]) == 1

    clock.advance(3600)
    third = await failed(core, clock)  # topped up: accepted, the incident is over
    assert third.status is JobStatus.DELIVERED

    sim.inject("submit", "no_balance")
    fourth = await failed(core, clock)
    assert fourth.failure_rule == "job.service_unreachable"
    assert len([n for n in core.notifier.notices if n.rule.startswith("notice.provider")]) == 2


async def test_honest_unexpected_error_says_what_became_of_the_credits(world) -> None:
    from cogs.errors import describe

    _, core = world
    job = await core.new_job(interaction_id=5555)
    made = await core.desk.made_by(5555)
    assert made is not None and made.id == job.id
    assert await core.desk.made_by(6666) is None
    text = describe(RuntimeError("boom"), "en-US", made)
    assert f"video #{job.id} was made: it is queued and holds 1 credit" in text
    assert "Nothing was charged" not in text
    assert "Nothing was charged" in describe(RuntimeError("boom"), "en-US", None)
    assert f"#{job.id}" in describe(RuntimeError("boom"), "zh-CN", made)


async def test_honest_a_job_waiting_on_an_empty_account_says_so_at_the_deadline(db, clock) -> None:
    config = WorkerConfig(poll_seconds=5, queue_deadline=120)  # shorter than the open circuit
    async with provider_core("minimax", db, clock, core_options={"config": config}) as (
        sim,
        core,
    ):
        sim.inject("submit", "no_balance")
        first = await failed(core, clock)
        assert first.failure_rule == "job.service_unreachable"
        # The circuit is open for the account: the next job waits in line, then is told why.
        second = await core.new_job()
        second = await core.run_until(second.id, JobStatus.FAILED, steps=400)
    assert second.failure_rule == "job.service_unreachable"
    assert len(sim.requests_to("submit")) == 1  # never sent while the circuit was open
    assert await ledger_kinds(db, second.id) == ["reserve", "refund"]
