"""The job's life through the real core and the Freepik adapter, against the simulator."""

from __future__ import annotations

from hailuo.model.status import JobStatus
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

world, sim, core = core_fixtures("freepik")


async def test_retired_768p_falls_back_to_1080p_and_is_followed_there(core: Core, sim) -> None:
    sim.retire("768p")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert job.provider_meta["tier"] == "1080p"
    assert job.provider_meta["tier_requested"] == "768p"
    assert len(sim.submits) == 1 and len(sim.requests_to("submit")) == 2
    assert all("-1080p/" in r.path for r in sim.requests_to("query"))


async def test_no_credits_at_freepik_moves_nowhere_and_refunds(core: Core, sim, db) -> None:
    sim.inject("submit", "http_402")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.no_provider"
    assert len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_a_task_the_provider_forgot_is_given_up_with_a_refund(core: Core, sim, db) -> None:
    sim.polls_until_done = None
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUBMITTED, JobStatus.RUNNING)
    sim.tasks.clear()  # the provider answers 404 for the task from now on
    job = await core.run_until(job.id, JobStatus.FAILED, steps=100)
    assert job.failure_rule == "provider.not_found"
    assert len(sim.requests_to("query")) >= 5
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
