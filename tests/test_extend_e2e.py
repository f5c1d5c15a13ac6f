"""Extend from the last frame, end to end through the real bot and discord.py client
against the Discord simulator and MiniMax's simulator (issue 15, item 3).

The provider's clip is ffmpeg's ``testsrc`` (a frame counter that changes every frame),
so the first frame and the last differ: the image the provider receives for the next
job must be the delivered video's *last* frame, decoded here independently (every frame
read with imageio-ffmpeg, the last kept), within a pixel tolerance for the JPEG/PNG
re-encode on the way.
"""

from __future__ import annotations

import base64
import io
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from hailuo.model.spec import Mode
from hailuo.model.status import JobStatus
from tests.busy_lane import busy, components_name
from tests.discord_sim import DiscordSimulator
from tests.e2e import SimSetup, custom_ids, press, running_bot
from tests.media import ffmpeg_exe, make_mp4
from tests.sims.minimax import MiniMaxSimulator
from tests.test_results_e2e import delivered, video_post

VIDEO = make_mp4(seconds=2.0, width=640, height=360, fps=12)
#: Mean absolute difference per channel (0..255) allowed for the re-encodes.
TOLERANCE = 6.0


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup(None, {"video": VIDEO})


def frames_of(data: bytes, size: tuple[int, int]) -> list[Image.Image]:
    """Every frame of an MP4, decoded from the start to raw RGB (not the bot's way: no
    seeking from the end, no PNG)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        path.write_bytes(data)
        cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path)]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout
    step = size[0] * size[1] * 3
    assert raw and len(raw) % step == 0
    return [Image.frombytes("RGB", size, raw[i : i + step]) for i in range(0, len(raw), step)]


def image_of_data_url(url: str) -> Image.Image:
    head, _, payload = url.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB")


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    assert a.size == b.size, (a.size, b.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


async def test_extend_sends_the_delivered_videos_last_frame_as_the_first_frame(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    member = discord_sim.default_user.id
    async with running_bot(env) as app:
        source = await delivered(app, discord_sim, "a fox in the snow")
        assert source.status is JobStatus.DELIVERED
        post = video_post(discord_sim, source)
        assert f"hailuo:extend:{source.id}" in custom_ids(post)

        pressed = await press(discord_sim, "extend", source.id, post, member)
        await pressed.wait_response()
        assert pressed.modal is not None
        assert pressed.modal["custom_id"] == f"hailuo:extend-prompt:{source.id}"
        submit = await discord_sim.send_modal_submit(
            f"hailuo:extend-prompt:{source.id}",
            {"prompt": "the fox runs into the forest"},
            message_id=post.id,
        )
        await submit.wait_response()
        assert submit.ephemeral  # "thinking" while the video is fetched and its frame taken
        confirm = await discord_sim.wait_for(
            lambda: next((m for m in submit.followups if m.ephemeral), None)
        )
        assert f"Video #{source.id} continues from its last frame" in confirm.content
        assert f"costs {source.cost} credit" in confirm.content
        assert custom_ids(confirm) == [f"hailuo:extend-ok:{source.id}"]

        ok = await discord_sim.send_component(
            f"hailuo:extend-ok:{source.id}", message_id=confirm.id, user_id=member
        )
        await ok.wait_response()
        assert f"continues video #{source.id}" in str(ok.response_data)
        task = await discord_sim.wait_for(
            lambda: next(iter(list(minimax.tasks.values())[1:]), None)
        )
        jobs = await app.bot.desk.jobs.recent_for_member(source.guild_id, member)
        extended = next(j for j in jobs if j.id != source.id)
        assert extended.spec.mode is Mode.IMAGE
        assert extended.spec.prompt == "the fox runs into the forest"
        assert (extended.spec.resolution, extended.spec.duration) == (
            source.spec.resolution,
            source.spec.duration,
        )
        ledger = await app.bot.desk.ledger.for_job(extended.id)
        assert [(e.kind.value, e.delta) for e in ledger][:1] == [("reserve", -extended.cost)]

    sent = image_of_data_url(task.body["first_frame_image"])
    frames = frames_of(post.attachments[0].data, (640, 360))
    assert len(frames) >= 2
    last, first = frames[-1], frames[0]
    assert difference(sent, last) < TOLERANCE
    assert difference(sent, first) > 2 * TOLERANCE  # it is the last frame, not any frame


async def test_outbox_lane_carries_the_new_card_of_an_extend(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    """In a busy channel, Extend's new card waits its turn behind the posts queued before it
    in the channel's lane (``tests/busy_lane.py``), and nothing draws a 429."""
    member = discord_sim.default_user.id
    async with running_bot(env) as app:
        source = await delivered(app, discord_sim, "a fox in the snow")
        post = video_post(discord_sim, source)
        pressed = await press(discord_sim, "extend", source.id, post, member)
        await pressed.wait_response()
        submit = await discord_sim.send_modal_submit(
            f"hailuo:extend-prompt:{source.id}", {"prompt": "on and on"}, message_id=post.id
        )
        await submit.wait_response()
        confirm = await discord_sim.wait_for(
            lambda: next((m for m in submit.followups if m.ephemeral), None)
        )
        lane = busy(app, discord_sim, source.channel_id)
        ok = await discord_sim.send_component(
            f"hailuo:extend-ok:{source.id}", message_id=confirm.id, user_id=member
        )
        await ok.wait_response()
        await lane.done()
        jobs = await app.bot.desk.jobs.recent_for_member(source.guild_id, member)
        extended = next(j for j in jobs if j.id != source.id)
        await discord_sim.wait_for(
            lambda: app.bot.outbox.pending(source.channel_id) == (0, 0) or None
        )
    card = lane.index_of(lambda c: components_name(c, f"hailuo:info:{extended.id}"))
    assert card > lane.last_busy_index()
    assert discord_sim.too_many_requests() == []
