"""The job's life through the real core and the MiniMax adapter, against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hailuo.model.status import JobStatus
from providers.minimax import MiniMaxProvider
from tests.core import Core, build_core
from tests.pg_server import BOTH_ENGINES
from tests.provider_matrix import ledger_kinds
from tests.sims.minimax import MiniMaxSimulator

ENGINES = BOTH_ENGINES


@pytest.fixture
async def sim(clock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []
    assert simulator.download_auth_headers_seen == []
    assert simulator.urls_with_key() == []


@pytest.fixture
async def core(db, clock, sim) -> AsyncIterator[Core]:
    async with aiohttp.ClientSession() as session:
        provider = MiniMaxProvider(session, api_key="mm-test-key", base_url=sim.base_url)
        yield build_core(db, clock, session, {"minimax": provider})


async def test_text_job_is_delivered_once_and_charged(core: Core, sim, db) -> None:
    job = await core.new_job()
    balance_before = await core.desk.balance(1, 42)
    assert balance_before.reserved == 1
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert core.notifier.posted[0].data == sim.video
    assert len(sim.submits) == 1
    assert job.delivery_kind == "attachment" and job.delivery_bytes == len(sim.video)
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
    after = await core.desk.balance(1, 42)
    assert (after.used, after.reserved, after.remaining) == (1, 0, 9)
    assert "submitted" in core.notifier.states(job.id)


async def test_generation_failure_refunds(core: Core, sim, db) -> None:
    sim.inject("query", "generation_failed")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "provider.moderation"
    assert job.failure_params["code"] == "1027"
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
    assert (await core.desk.balance(1, 42)).remaining == 10
    assert core.notifier.posted == []


async def test_sensitive_prompt_at_submit_fails_without_retry(core: Core, sim, db) -> None:
    sim.inject("submit", "sensitive_prompt")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "provider.moderation"
    assert len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_server_error_at_submit_is_retried(core: Core, sim) -> None:
    sim.inject("submit", "http_503")
    sim.inject("submit", "rate_limit")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert len(sim.requests_to("submit")) == 3
    assert len(sim.submits) == 1
    assert job.submit_attempts == 3


async def test_unknown_outcome_is_never_resubmitted(core: Core, sim, db) -> None:
    sim.inject("submit", "accept_then_drop")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.interrupted_submit"
    assert len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_crash_in_submitting_is_recovered_as_failed(core: Core, db) -> None:
    job = await core.new_job()
    await core.jobs.transition(job, JobStatus.SUBMITTING, core.clock(), provider="minimax")
    await core.worker.recover()
    job = await core.jobs.get(job.id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.failure_rule == "job.interrupted_submit"
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_too_large_for_the_channel_becomes_a_link(core: Core, sim) -> None:
    core.notifier.upload_limit = 100  # bytes: the MP4 cannot fit
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert job.delivery_kind == "link"
    assert core.notifier.posted[0].kind == "link"
    assert core.notifier.posted[0].reason == "delivery.too_large"


async def test_a_413_from_the_upload_falls_back_to_a_link(core: Core) -> None:
    core.notifier.refuse_upload = True
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert job.delivery_kind == "link"


async def test_expired_download_url_is_fetched_again(core: Core, sim) -> None:
    sim.inject("download", "expired_url")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert job.delivery_kind == "attachment"
    assert len(sim.requests_to("retrieve")) == 2


async def test_delivery_budget_posting_outage_outlasts_five_tries_then_delivers(
    core: Core, db
) -> None:
    core.notifier.fail_posts = 12  # an outage of many tries: five once ended the job
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert job.delivery_attempts == 13
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]


async def test_delivery_budget_posting_outage_ends_when_the_file_expires(core: Core, db) -> None:
    core.notifier.fail_posts = 10_000
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUCCEEDED)
    succeeded = core.clock()
    while not job.status.terminal:
        await core.worker.tick()
        core.clock.advance(60)
        fresh = await core.jobs.get(job.id)
        assert fresh is not None
        job = fresh
    assert job.status is JobStatus.DELIVERY_FAILED
    assert (job.failure_rule, job.failure_params) == ("job.result_expired", {"hours": 9})
    # Tried all along MiniMax's 9 hours, paced at most five minutes apart, and no longer.
    assert 9 * 3600 <= core.clock() - succeeded <= 9 * 3600 + 400
    assert job.delivery_attempts > 9 * 3600 / 400  # five minutes (with jitter) apart
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_query_faults_do_not_fail_the_job(core: Core, sim) -> None:
    for fault in ("http_500", "malformed_json", "bad_key"):
        sim.inject("query", fault)
    job = await core.new_job()
    await core.run_until(job.id, JobStatus.DELIVERED, steps=100)


async def test_a_fail_status_with_any_code_ends_the_job(core: Core, sim, db) -> None:
    sim.polls_until_done = None
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUBMITTED, JobStatus.RUNNING)
    task_id = job.provider_task_id
    sim.fail(task_id, code=1024, msg="internal error")
    job = await core.run_until(job.id, JobStatus.FAILED, steps=10)
    assert job.failure_params["code"] == "1024"
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
