"""The demo provider: a real H.264 MP4 rendered locally, delivered through the real core."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hailuo.jobs.capabilities import can_serve
from hailuo.model.provider import Phase, PreparedInput
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.settings import load_settings
from hailuo.web.server import HealthServer
from providers.demo import DemoProvider, overlay
from providers.registry import TABLE, build_providers
from tests import media
from tests.core import Core, build_core
from tests.discord_sim import DiscordSimulator
from tests.e2e import bot_env, channel, running_bot


@pytest.fixture
async def served(tmp_path: Path, db) -> AsyncIterator[tuple[DemoProvider, str]]:
    """A demo provider whose files are served by the bot's own HTTP server (port 0)."""
    demo = DemoProvider(directory=tmp_path / "demo", base_url="http://unused")
    server = HealthServer(
        host="127.0.0.1",
        port=0,
        gateway_connected=lambda: True,
        database_ok=db.ping,
        jobs_by_state=dict,  # type: ignore[arg-type]
        metrics=None,  # type: ignore[arg-type]
        mounts=[demo.mount],
    )
    await server.start()
    base = f"http://127.0.0.1:{server.bound_port}"
    demo.serve_from(base)
    try:
        yield demo, base
    finally:
        await demo.close()
        await server.close()


@pytest.fixture
async def core(db, clock, served) -> AsyncIterator[Core]:
    demo, _ = served
    async with aiohttp.ClientSession() as session:
        yield build_core(db, clock, session, {"demo": demo})


async def deliver(core: Core, demo: DemoProvider, job_id: int) -> None:
    await core.worker.tick()  # submitted: the render starts
    await demo.idle()  # awaited, not slept on
    await core.run_until(job_id, JobStatus.DELIVERED)


async def test_a_text_job_is_delivered_as_a_real_h264_mp4(core: Core, served) -> None:
    demo, _ = served
    job = await core.new_job(JobSpec(mode=Mode.TEXT, prompt="a red fox in the snow [Zoom in]"))
    await deliver(core, demo, job.id)
    [posted] = core.notifier.posted
    assert posted.kind == "attachment" and posted.data is not None
    info = media.probe_video(posted.data)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height) == (384, 216)
    assert "Duration: 00:00:02" in info.raw
    assert len(posted.data) < 200_000


async def test_an_image_job_zooms_into_the_first_frame(core: Core, served) -> None:
    demo, _ = served
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="", duration=6, resolution="768P")
    job = await core.new_job(spec, images={"first": ("image/png", png)})
    await deliver(core, demo, job.id)
    [posted] = core.notifier.posted
    assert posted.data is not None
    info = media.probe_video(posted.data)
    assert (info.codec, info.width, info.height) == ("h264", 384, 288)  # the image's 4:3


async def test_query_reports_progress_then_success(served) -> None:
    demo, _ = served
    receipt = await demo.submit(PreparedInput(spec=JobSpec(mode=Mode.TEXT, prompt="x")))
    state = await demo.query(receipt.task_id, {})
    assert state.phase in (Phase.RUNNING, Phase.SUCCEEDED)
    await demo.idle()
    state = await demo.query(receipt.task_id, {})
    assert state.phase is Phase.SUCCEEDED and state.locator == receipt.task_id
    # After a restart the render is gone from memory but its file is still found.
    again = DemoProvider(directory=demo.directory, base_url="http://x")
    assert (await again.query(receipt.task_id, {})).phase is Phase.SUCCEEDED
    lost = await again.query("0123456789abcdef", {})
    assert lost.phase is Phase.FAILED and lost.failure is not None


async def test_a_broken_first_frame_still_renders(served) -> None:
    demo, _ = served
    bad = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    receipt = await demo.submit(
        PreparedInput(spec=JobSpec(mode=Mode.IMAGE, prompt="x"), first_frame=bad)
    )
    await demo.idle()
    assert (await demo.query(receipt.task_id, {})).phase is Phase.SUCCEEDED


@pytest.mark.parametrize("name", ["..%2Fdemo.sqlite3", "zz.mp4", "0123456789abcdef.txt", "x"])
async def test_the_file_route_serves_only_render_names(served, name: str) -> None:
    _, base = served
    async with aiohttp.ClientSession() as session, session.get(f"{base}/demo/{name}") as resp:
        assert resp.status == 404


def test_every_frame_says_demo() -> None:
    layer = overlay("a prompt " * 40, (384, 216))
    # The red badge sits top left, opaque enough to read on any picture.
    assert layer.getpixel((6, 6)) == (200, 20, 40, 230)
    white = [
        (x, y)
        for x in range(120)
        for y in range(50)
        if layer.getpixel((x, y)) == (255, 255, 255, 255)
    ]
    assert len(white) > 100  # the letters D, E, M, O
    assert layer.getpixel((200, 210))[3] > 0  # the caption band


def test_no_key_means_the_demo_provider(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"DISCORD_TOKEN": "t", "HAILUO_DATABASE": str(tmp_path / "x.sqlite3")},
        dotenv_path=None,
    )
    assert settings.demo_mode
    built = build_providers(settings.providers, session=None)  # type: ignore[arg-type]
    demo = built["demo"]
    assert isinstance(demo, DemoProvider)
    assert demo.directory == tmp_path / "demo"


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(mode=Mode.TEXT, prompt="x"),
        JobSpec(mode=Mode.IMAGE, prompt="", resolution="512P", duration=10),
        JobSpec(mode=Mode.FIRST_LAST, prompt="", resolution="1080P"),
    ],
)
def test_the_demo_can_serve_every_valid_spec(spec: JobSpec) -> None:
    assert can_serve("demo", spec, TABLE)


async def test_the_bot_with_no_key_delivers_a_demo_video(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """bot.py's wiring: demo mode, the /demo route on its own server, the loopback download."""
    async with DiscordSimulator() as discord_sim:
        env = bot_env(discord_sim, tmp_path / "bot.sqlite3", HAILUO_ALLOW_PRIVATE_URLS="0")
        with caplog.at_level("WARNING", logger="hailuo"):
            async with running_bot(env):
                inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a kite"})
                await inter.wait_response()
                room = channel(discord_sim)
                videos = await discord_sim.wait_for(lambda: room.videos() or None)
        assert discord_sim.internal_errors == []
    info = media.probe_video(videos[0].attachments[0].data)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert any("Demo mode" in r.getMessage() for r in caplog.records)
