"""The job's life through the real core and the Freepik adapter, against the simulator."""

from __future__ import annotations

from hailuo.model.status import JobStatus
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds
from tests.sims.base import Fault
from tests.sims.freepik import message

world, sim, core = core_fixtures("freepik")


async def test_provider_correct_retired_768p_fails_refunded_never_1080p(
    core: Core, sim, db
) -> None:
    sim.retire("768p")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.spec.resolution == "768P"
    assert job.failure_rule == "job.tier_not_offered"
    assert job.failure_params == {"provider": "freepik", "resolution": "768P"}
    assert sim.submits == [] and len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_no_credits_at_freepik_moves_nowhere_and_refunds(core: Core, sim, db) -> None:
    sim.inject("submit", "http_402")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.service_unreachable"
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


async def test_a_404_now_and_then_never_adds_up_to_giving_up(core: Core, sim, db) -> None:
    """The provider's "no such task" gives the job up only when it comes five times in a
    row: one now and then between answers that know the task (a lagging replica) starts
    the count over."""
    sim.polls_until_done = None  # in progress until the test completes it
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUBMITTED, JobStatus.RUNNING)
    for _ in range(6):  # more than the limit, each 404 followed by an answer
        asked = len(sim.requests_to("query"))
        sim.inject("query", Fault.http(404, message("Not Found")))
        for _ in range(100):  # until the 404 and one answer after it were asked
            if len(sim.requests_to("query")) >= asked + 2:
                break
            await core.worker.tick()
            core.clock.advance(5)
        followed = await core.jobs.get(job.id)
        assert followed is not None and followed.status in (JobStatus.SUBMITTED, JobStatus.RUNNING)
    sim.complete(next(iter(sim.tasks)))
    job = await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
