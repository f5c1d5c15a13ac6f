"""The job's life through the real core and the odkkk adapter, against the simulator."""

from __future__ import annotations

from hailuo.spec import JobSpec, Mode
from hailuo.status import JobStatus
from tests import media
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

world, sim, core = core_fixtures("odkkk")


async def kinds(db, job_id: int) -> list[str]:
    return await ledger_kinds(db, job_id)


async def test_image_job_is_delivered(core: Core, sim) -> None:
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="", duration=10, resolution="768P")
    job = await core.new_job(spec, images={"first": ("image/png", png)})
    await core.run_until(job.id, JobStatus.DELIVERED)
    assert core.notifier.posted[0].data == sim.video
    body = sim.submits[0]
    assert len(body["image_urls"]) == 1 and "prompt" not in body
    assert (await core.desk.balance(1, 42)).used == 2


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
    assert await kinds(db, job.id) == ["reserve", "refund"]
