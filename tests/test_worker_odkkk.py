"""The job's life through the real core and the odkkk adapter, against the simulator."""

from __future__ import annotations

from hailuo.status import JobStatus
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
