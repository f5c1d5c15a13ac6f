"""The job's life through the real core and the Novita adapter, against the simulator."""

from __future__ import annotations

from hailuo.model.status import JobStatus
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

world, sim, core = core_fixtures("novita")


async def test_expired_video_url_is_fetched_again_from_a_fresh_query(core: Core, sim) -> None:
    sim.inject("download", "expired_url")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert job.delivery_kind == "attachment"
    assert sim.downloads == 1 and len(sim.requests_to("download")) == 2


async def test_not_enough_balance_gives_up_on_novita(core: Core, sim, db) -> None:
    sim.inject("submit", "no_balance")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.service_unreachable"
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
