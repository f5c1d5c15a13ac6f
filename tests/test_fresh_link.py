"""The core under the link message's **Fresh link** button, and shrink-to-fit in the core.

The real job core (desk, worker, delivery step) against the MiniMax simulator, with
a real SQLite file and the real bundled ffmpeg; ``RecordingNotifier`` stands in for
Discord, which the end-to-end tests (``test_shrink_e2e.py``) cover.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hailuo.jobs.links import fresh_url
from hailuo.jobs.worker import WorkerConfig
from hailuo.media.shrink import Shrinker
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused
from providers.minimax import MiniMaxProvider
from tests.core import Core, build_core
from tests.media import noisy_mp4, probe_video
from tests.sims.minimax import MiniMaxSimulator
from tests.support import RecordingNotifier

pytestmark = pytest.mark.timeout(120)

LIMIT = 10 * 1024 * 1024


def big() -> bytes:
    """A real ~15 MB H.264 + AAC video (4 s, low resolution: the point is its size)."""
    return noisy_mp4(4, 640, 360, 28_000_000)


@pytest.fixture
async def sim(clock, request: pytest.FixtureRequest) -> AsyncIterator[MiniMaxSimulator]:
    """The big video for the shrink tests; the default small clip for the fresh-link ones."""
    video = big() if "shrink" in request.node.name else None
    async with MiniMaxSimulator(clock=clock, video=video) as simulator:
        yield simulator


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier(upload_limit=LIMIT)


@pytest.fixture
async def core(db, clock, sim, notifier, tmp_path: Path) -> AsyncIterator[Core]:
    work = tmp_path / "work"
    work.mkdir()
    async with aiohttp.ClientSession() as session:
        provider = MiniMaxProvider(session, api_key="mm-test-key", base_url=sim.base_url)
        yield build_core(
            db,
            clock,
            session,
            {"minimax": provider},
            notifier=notifier,
            config=WorkerConfig(poll_seconds=5, default_upload_limit=LIMIT),
            shrinker=Shrinker(directory=work),
        )
    assert list(work.iterdir()) == []  # no encode output left behind


async def test_shrink_in_the_core_attaches_one_file_under_the_limit(core: Core) -> None:
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
    assert job.status is JobStatus.DELIVERED and job.delivery_kind == "attachment"
    (posted,) = core.notifier.posted
    assert posted.kind == "attachment" and posted.data is not None
    assert len(posted.data) <= LIMIT < len(big())
    assert probe_video(posted.data).codec == "h264"


async def test_shrink_refused_by_the_upload_ends_in_a_link(
    core: Core, notifier: RecordingNotifier
) -> None:
    notifier.refuse_upload = True  # every upload, the compressed one too, meets a 413
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
    assert job.delivery_kind == "link"
    (posted,) = core.notifier.posted
    assert posted.kind == "link" and posted.reason == "delivery.too_large"
    assert "/download/" in (posted.url or "")


async def test_fresh_link_asks_the_provider_again(core: Core, sim: MiniMaxSimulator) -> None:
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.DELIVERED)
    before = len(sim.requests_to("retrieve"))
    core.clock.advance(3600)
    url = await fresh_url(core.jobs, core.worker.providers, job.guild_id, job.id)
    assert "/download/" in url
    assert len(sim.requests_to("retrieve")) == before + 1


async def test_fresh_link_refusals_name_the_reason(core: Core, sim: MiniMaxSimulator) -> None:
    job = await core.new_job()
    with pytest.raises(ActionRefused) as refused:
        await fresh_url(core.jobs, core.worker.providers, job.guild_id, job.id)
    assert refused.value.rule == "control.fresh.no_video"  # still queued: nothing to link
    with pytest.raises(ActionRefused) as refused:
        await fresh_url(core.jobs, core.worker.providers, job.guild_id + 1, job.id)
    assert refused.value.rule == "control.unknown_job"  # another server's job

    job = await core.run_until(job.id, JobStatus.DELIVERED)
    sim.inject("retrieve", "rate_limit")
    with pytest.raises(ActionRefused) as refused:
        await fresh_url(core.jobs, core.worker.providers, job.guild_id, job.id)
    assert refused.value.rule == "control.fresh.failed"
