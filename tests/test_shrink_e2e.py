"""Shrink to fit, then link, end to end: the real bot against the Discord and MiniMax sims.

The provider's result is a real ~15 MB H.264 video and the channel takes 10 MiB: it
is re-encoded by the real bundled ffmpeg and posted as one attachment with a note
and the original's link. A corrupt result cannot be re-encoded: a link is posted
with its size, the limit and a **Fresh link** button, which still answers after
the bot restarts, with a new URL once the first has expired.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import aiohttp
import pytest

from cogs.faults import megabytes
from hailuo.model.status import JobStatus
from tests.discord_sim import DiscordSimulator, SimGuild, SimMessage
from tests.e2e import SimSetup, card_shows, channel, custom_ids, press, private_text, running_bot
from tests.media import noisy_mp4, probe_video
from tests.sims.minimax import MiniMaxSimulator
from tests.support import OffsetClock

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024
LIMIT = 10 * MIB
MEMBER = 6001
# ~15 MB that passes the MP4 sniff (an ftyp box first) but that ffmpeg cannot decode.
CORRUPT = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"not really an mp4 " * 850_000


@pytest.fixture
def sim_setup(request: pytest.FixtureRequest) -> SimSetup:
    """MiniMax serves the big video (a corrupt one where the test says so), on a clock
    the test can move past the result URL's lifetime."""
    name = request.node.name
    video = CORRUPT if "corrupt" in name else big()
    # A boosted server (50 MiB) whose channel still refuses over 10 MiB: the upload's 413.
    guilds = [SimGuild(premium_tier=2, upload_limit=LIMIT)] if "413" in name else None
    return SimSetup(guilds, minimax={"video": video, "clock": OffsetClock()})


def big() -> bytes:
    """A real ~15 MB H.264 + AAC video (4 s, low resolution: the point is its size)."""
    return noisy_mp4(4, 640, 360, 28_000_000)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary directory, so the test sees every file left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


async def delivered(sim: DiscordSimulator, words: str) -> SimMessage:
    """The bot's delivery post (it mentions the job), once it says ``words``."""
    room = channel(sim)
    return await sim.wait_for(
        lambda: next((m for m in room.bot_messages() if words in m.content), None), timeout=90
    )


async def test_shrink_e2e_too_big_result_is_posted_compressed_with_the_note(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str], scratch: Path
) -> None:
    assert len(big()) > LIMIT
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a storm"}, user_id=MEMBER, attachment_size_limit=LIMIT
        )
        await inter.wait_response()
        message = await delivered(discord_sim, "compressed to fit")
        await card_shows(discord_sim, inter.original_message, "Delivered")
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, MEMBER, 1))[0]
        stored = await app.bot.desk.jobs.get(job.id)
        assert stored is not None
    room = channel(discord_sim)
    assert room.videos() == [message]  # one attachment, no link post beside it
    (attachment,) = message.attachments
    assert len(attachment.data) <= LIMIT
    assert probe_video(attachment.data).codec == "h264"
    assert _duration(attachment.data) == pytest.approx(_duration(big()), abs=0.1)
    assert f"{megabytes(LIMIT)} MB upload limit" in message.content
    assert f"original ({megabytes(len(big()))} MB)" in message.content
    assert re.search(r"<http://127\.0\.0\.1:\d+/download/[^>]+>", message.content)
    assert f"(job #{job.id})" in message.content  # what find_delivery looks for
    assert stored.status is JobStatus.DELIVERED and stored.delivery_kind == "attachment"
    assert stored.delivered_message_id == message.id
    assert list(scratch.iterdir()) == []  # the download and the encode are both gone


async def test_shrink_e2e_after_a_413_posts_the_compressed_video(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str], scratch: Path
) -> None:
    """Every known limit allows the file, yet the upload is refused: shrink, not a link."""
    env = {**env, "HAILUO_DEFAULT_UPLOAD_LIMIT": str(50 * MIB)}
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a storm"}, attachment_size_limit=50 * MIB
        )
        await inter.wait_response()
        message = await delivered(discord_sim, "compressed to fit")
        await card_shows(discord_sim, inter.original_message, "Delivered")
    refused = [c for c in discord_sim.calls if c.method == "POST" and c.status == 413]
    assert len(refused) == 1  # the original, refused once; the compressed one went through
    (attachment,) = message.attachments
    assert len(attachment.data) <= LIMIT
    assert channel(discord_sim).videos() == [message]
    assert list(scratch.iterdir()) == []


async def test_fresh_link_after_a_corrupt_result_and_a_restart(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str], scratch: Path
) -> None:
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "static"}, user_id=MEMBER, attachment_size_limit=LIMIT
        )
        await inter.wait_response()
        link = await delivered(discord_sim, "could not be compressed")
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, MEMBER, 1))[0]
    assert f"it is {megabytes(len(CORRUPT))} MB" in link.content
    assert f"over this channel's {megabytes(LIMIT)} MB upload limit" in link.content
    assert custom_ids(link) == [f"hailuo:fresh:{job.id}"]
    assert channel(discord_sim).videos() == []
    first_url = re.search(r"(http://\S+/download/\S+)", link.content)
    assert first_url is not None
    assert list(scratch.iterdir()) == []

    minimax.clock.advance(10 * 3600)  # past MiniMax's 9 h: the posted URL has expired
    async with aiohttp.ClientSession() as http:
        async with http.get(first_url[1]) as resp:
            assert resp.status == 403
        async with running_bot(env):  # a new process: nothing of the old view in memory
            before = len(minimax.requests_to("retrieve"))
            pressed = await press(discord_sim, "fresh", job.id, link, user=MEMBER + 1)
            text = await private_text(pressed)
            assert len(minimax.requests_to("retrieve")) == before + 1
        fresh = re.search(r"(http://\S+/download/\S+)", text)
        assert fresh is not None and fresh[1] != first_url[1]
        assert f"#{job.id}" in text
        async with http.get(fresh[1]) as resp:
            assert resp.status == 200
            assert await resp.read() == CORRUPT


def _duration(data: bytes) -> float:
    match = re.search(r"Duration: (\d+):(\d{2}):(\d{2}\.\d+)", probe_video(data).raw)
    assert match is not None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
