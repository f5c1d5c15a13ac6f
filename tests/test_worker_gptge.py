"""The job's life through the real core and the gpt.ge adapter, against the simulator."""

from __future__ import annotations

import pytest

from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

world, sim, core = core_fixtures("gptge")


async def test_sensitive_prompt_at_submit_fails_without_retry(core: Core, sim, db) -> None:
    sim.inject("submit", "sensitive_prompt")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "provider.moderation"
    assert len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


@pytest.mark.parametrize("shape", ["native", "wrapper"])
async def test_both_query_shapes_and_the_fallback_path_deliver(core: Core, sim, shape) -> None:
    sim.query_shape = shape
    sim.task_route = shape == "wrapper"  # the native run also goes through the fallback path
    job = await core.new_job(JobSpec(mode=Mode.TEXT, prompt="rain [Shake]"))
    await core.run_until(job.id, JobStatus.DELIVERED)
    assert core.notifier.posted[0].data == sim.video
    assert sim.submits[0]["prompt"] == "rain [晃动]"
    assert bool(sim.requests_to("query_native")) is (shape == "native")
    assert bool(sim.requests_to("retrieve")) is (shape == "native")
