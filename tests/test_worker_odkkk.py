"""The job's life through the real core and the odkkk adapter, against the simulator."""

from __future__ import annotations

from hailuo.model.status import JobStatus
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

world, sim, core = core_fixtures("odkkk")


async def test_rate_limit_at_submit_waits_and_never_fails(core: Core, sim) -> None:
    sim.inject("submit", "http_429", times=2)
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert len(sim.requests_to("submit")) == 3 and len(sim.submits) == 1


async def test_integer_error_code_failure_refunds(core: Core, sim, db) -> None:
    sim.inject("query", "generation_failed_int")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "provider.unavailable"
    assert job.failure_params["code"] == "500"
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_delivery_budget_dead_link_that_cannot_be_renewed_ends_the_job(
    core: Core, sim, db
) -> None:
    """odkkk's ``results[0]`` is the file itself: a 403 on it is final, refunded at once."""
    sim.inject("download", "expired_url")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
    assert job.status is JobStatus.DELIVERY_FAILED
    assert job.failure_rule == "provider.expired"
    assert len(sim.requests_to("download")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
