"""The job's life through the real core, alike for all five adapters against their simulators."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from tests import media
from tests.core import Core
from tests.provider_matrix import PROVIDERS, ledger_kinds, provider_core


@pytest.fixture(params=list(PROVIDERS))
async def world(request, db, clock) -> AsyncIterator[tuple[str, Any, Core]]:
    async with provider_core(request.param, db, clock) as (sim, core):
        yield request.param, sim, core


async def test_text_job_is_delivered_with_the_exact_bytes(world, db) -> None:
    name, sim, core = world
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert core.notifier.posted[0].data == sim.video
    assert len(sim.submits) == 1
    assert job.provider == name
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
    assert (await core.desk.balance(1, 42)).remaining == 9


async def test_moderation_failure_ends_failed_and_refunded(world, db) -> None:
    name, sim, core = world
    sim.inject(*PROVIDERS[name].moderation_fault)
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == PROVIDERS[name].moderation_rule
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
    assert (await core.desk.balance(1, 42)).remaining == 10
    assert core.notifier.posted == []


async def test_server_error_at_submit_is_retried_and_submitted_once(world) -> None:
    _, sim, core = world
    sim.inject("submit", "http_503")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    assert len(sim.requests_to("submit")) == 2
    assert len(sim.submits) == 1
    assert job.submit_attempts == 2


async def test_accept_then_drop_is_never_resubmitted(world, db) -> None:
    _, sim, core = world
    sim.inject("submit", "accept_then_drop")
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.FAILED)
    assert job.failure_rule == "job.interrupted_submit"
    assert len(sim.requests_to("submit")) == 1
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]


async def test_query_faults_do_not_fail_the_job(world) -> None:
    _, sim, core = world
    for fault in ("http_500", "malformed_json", "http_429"):
        sim.inject("query", fault)
    job = await core.new_job()
    await core.run_until(job.id, JobStatus.DELIVERED, steps=100)
    assert core.notifier.posted[0].data == sim.video


DATA_URL = "data:image/png;base64,"
NEUTRAL_PROMPT = "Animate this image with natural motion."


def minimax_body(body: dict[str, Any], png: bytes) -> None:
    assert body["first_frame_image"].startswith(DATA_URL)
    assert "prompt" not in body


def freepik_body(body: dict[str, Any], png: bytes) -> None:
    assert body["prompt"] == NEUTRAL_PROMPT  # Freepik requires a prompt even for an image
    assert body["first_frame_image"] == base64.b64encode(png).decode()  # bare base64


def novita_body(body: dict[str, Any], png: bytes) -> None:
    assert body["image"].startswith(DATA_URL)
    assert body["prompt"] == NEUTRAL_PROMPT


def odkkk_body(body: dict[str, Any], png: bytes) -> None:
    assert len(body["image_urls"]) == 1 and "prompt" not in body


def gptge_body(body: dict[str, Any], png: bytes) -> None:
    assert body["first_frame_image"].startswith(DATA_URL)
    assert (body["duration"], body["resolution"]) == (10, "768P")


#: How each provider spells an image-to-video request (providers.md, seeds 000-004).
IMAGE_BODIES = {
    "minimax": minimax_body,
    "freepik": freepik_body,
    "novita": novita_body,
    "odkkk": odkkk_body,
    "gptge": gptge_body,
}


async def test_image_job_is_delivered_in_the_provider_s_spelling(world) -> None:
    name, sim, core = world
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="", duration=10, resolution="768P")
    job = await core.new_job(spec, images={"first": ("image/png", png)})
    await core.run_until(job.id, JobStatus.DELIVERED)
    assert core.notifier.posted[0].data == sim.video
    IMAGE_BODIES[name](sim.submits[0], png)
    assert (await core.desk.balance(1, 42)).used == 2
