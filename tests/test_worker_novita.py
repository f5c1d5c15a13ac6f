"""The job's life through the real core and the Novita adapter, against the simulator."""

from __future__ import annotations

from hailuo.spec import JobSpec, Mode
from hailuo.status import JobStatus
from tests import media
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

world, sim, core = core_fixtures("novita")


async def kinds(db, job_id: int) -> list[str]:
    return await ledger_kinds(db, job_id)


async def test_image_job_is_delivered(core: Core, sim) -> None:
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="", duration=10, resolution="768P")
    job = await core.new_job(spec, images={"first": ("image/png", png)})
    await core.run_until(job.id, JobStatus.DELIVERED)
    assert core.notifier.posted[0].data == sim.video
    body = sim.submits[0]
    assert body["image"].startswith("data:image/png;base64,")
    assert body["prompt"] == "Animate this image with natural motion."
    assert (await core.desk.balance(1, 42)).used == 2


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
    assert job.failure_rule == "job.no_provider"
    assert await kinds(db, job.id) == ["reserve", "refund"]
