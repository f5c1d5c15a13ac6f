"""The job's life through the real core and the odkkk adapter, against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hailuo.spec import JobSpec, Mode
from hailuo.status import JobStatus
from providers.odkkk import OdkkkProvider
from storage.ledger import LedgerRepository
from tests import media
from tests.core import Core, build_core
from tests.sims.odkkk import OdkkkSimulator


@pytest.fixture
async def sim(clock) -> AsyncIterator[OdkkkSimulator]:
    async with OdkkkSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []
    assert simulator.download_auth_headers_seen == []


@pytest.fixture
async def core(db, clock, sim) -> AsyncIterator[Core]:
    async with aiohttp.ClientSession() as session:
        provider = OdkkkProvider(session, api_key="od-test-key", base_url=sim.api_base)
        yield build_core(db, clock, session, {"odkkk": provider})


async def kinds(db, job_id: int) -> list[str]:
    return [e.kind.value for e in await LedgerRepository(db).for_job(job_id)]


async def test_text_job_is_delivered_with_the_exact_bytes(core: Core, sim, db) -> None:
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert core.notifier.posted[0].data == sim.video
    assert len(sim.submits) == 1
    assert job.provider == "odkkk"
    assert await kinds(db, job.id) == ["reserve", "charge"]
    assert (await core.desk.balance(1, 42)).remaining == 9


async def test_image_job_is_delivered(core: Core, sim) -> None:
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="", duration=10, resolution="768P")
    job = await core.new_job(spec, images={"first": ("image/png", png)})
    await core.run_until(job.id, JobStatus.DELIVERED)
    assert core.notifier.posted[0].data == sim.video
    body = sim.submits[0]
    assert len(body["image_urls"]) == 1 and "prompt" not in body
    assert (await core.desk.balance(1, 42)).used == 2


async def test_moderation_failure_ends_failed_and_refunded(core: Core, sim, db) -> None:
    sim.inject("query", "moderation")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "provider.moderation"
    assert job.failure_params["code"] == "content_policy_violation"
    assert await kinds(db, job.id) == ["reserve", "refund"]
    assert (await core.desk.balance(1, 42)).remaining == 10
    assert core.notifier.posted == []


async def test_server_error_at_submit_is_retried_and_submitted_once(core: Core, sim) -> None:
    sim.inject("submit", "http_503")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert len(sim.requests_to("submit")) == 2
    assert len(sim.submits) == 1
    assert job.submit_attempts == 2


async def test_accept_then_drop_is_never_resubmitted(core: Core, sim, db) -> None:
    sim.inject("submit", "accept_then_drop")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.interrupted_submit"
    assert len(sim.requests_to("submit")) == 1
    assert await kinds(db, job.id) == ["reserve", "refund"]


async def test_query_faults_do_not_fail_the_job(core: Core, sim) -> None:
    for fault in ("http_500", "malformed_json", "http_429"):
        sim.inject("query", fault)
    job = await core.new_job()
    await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert core.notifier.posted[0].data == sim.video


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
