"""The job's life through the real core, alike for all five adapters against their simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hailuo.status import JobStatus
from tests.core import Core
from tests.provider_matrix import PROVIDERS, ledger_kinds, provider_core


@pytest.fixture(params=list(PROVIDERS))
async def world(request, db, clock) -> AsyncIterator[tuple[str, Any, Core]]:
    async with provider_core(request.param, db, clock) as (sim, core):
        yield request.param, sim, core


async def test_text_job_is_delivered_with_the_exact_bytes(world, db) -> None:
    name, sim, core = world
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert core.notifier.posted[0].data == sim.video
    assert len(sim.submits) == 1
    assert job.provider == name
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
    assert (await core.desk.balance(1, 42)).remaining == 9


async def test_moderation_failure_ends_failed_and_refunded(world, db) -> None:
    name, sim, core = world
    sim.inject(*PROVIDERS[name].moderation_fault)
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == PROVIDERS[name].moderation_rule
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
    assert (await core.desk.balance(1, 42)).remaining == 10
    assert core.notifier.posted == []


async def test_server_error_at_submit_is_retried_and_submitted_once(world) -> None:
    _, sim, core = world
    sim.inject("submit", "http_503")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert len(sim.requests_to("submit")) == 2
    assert len(sim.submits) == 1
    assert job.submit_attempts == 2


async def test_accept_then_drop_is_never_resubmitted(world, db) -> None:
    _, sim, core = world
    sim.inject("submit", "accept_then_drop")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.interrupted_submit"
    assert len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_query_faults_do_not_fail_the_job(world) -> None:
    _, sim, core = world
    for fault in ("http_500", "malformed_json", "http_429"):
        sim.inject("query", fault)
    job = await core.new_job()
    await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert core.notifier.posted[0].data == sim.video
