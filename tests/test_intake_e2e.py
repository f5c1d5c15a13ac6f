"""Hostile input through the real bot and the Discord simulator: attachments and results.

- an attachment larger than Discord declared is cut off at the image byte limit;
- animate requests beyond the member's in-flight cap are refused before any download;
- a result that is not an MP4 never reaches the channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from hailuo.i18n.messages import render
from hailuo.jobs import capabilities
from hailuo.model.status import JobStatus
from providers.registry import TABLE
from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment
from tests.e2e import (
    SimSetup,
    card_shows,
    channel,
    private_answer,
    private_reply,
    running_bot,
)

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024


@pytest.fixture
def sim_setup() -> SimSetup:
    """MiniMax tasks stay in progress until a test completes them: jobs stay in flight."""
    return SimSetup.held()


def picture(extra: int = 0) -> SimAttachment:
    png = media.make_image("PNG", 640, 480)
    return SimAttachment(png, "photo.png", "image/png", 640, 480, len(png), extra=extra)


def cdn_downloads(sim: DiscordSimulator) -> list:
    return sim.find_calls(method="GET", path_regex=r"^/cdn/attachments/")


async def test_bounded_read_attachment_larger_than_declared_is_cut_off(
    discord_sim, minimax, env
) -> None:
    limit = capabilities.image_plan(["minimax"], TABLE).check.max_bytes
    extra = 256 * MIB  # what a CDN (or anything behind the URL) could keep sending
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], attachments={"image": picture(extra=extra)}
        )
        text = await private_answer(discord_sim, inter)
        assert text == render("image.too_big_streamed", None, limit=limit)
        assert await app.bot.desk.jobs.count_by_status() == {}
    (path,) = discord_sim.cdn_sent
    # the bot stopped reading at the limit; the rest never left the CDN (bar socket buffers)
    assert discord_sim.cdn_sent[path] < limit + 32 * MIB < extra
    assert minimax.requests == []


async def test_bounded_read_animates_beyond_the_cap_are_refused_before_download(
    discord_sim, minimax, env
) -> None:
    env = {**env, "HAILUO_MAX_JOBS_PER_MEMBER": "3"}
    gate = asyncio.Event()
    async with running_bot(env) as app:
        for prompt in ("one", "two"):  # two jobs in flight: one slot left
            inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
            await inter.wait_response()
            assert not inter.ephemeral
        discord_sim.cdn_gate = gate  # downloads wait: every request is checked at once
        try:
            burst = await asyncio.gather(
                *(
                    discord_sim.send_slash(["hailuo", "animate"], attachments={"image": picture()})
                    for _ in range(5)
                )
            )
            for inter in burst:
                await inter.wait_response()
            # Each answered at once ("checking your image"); four then refused privately,
            # their cards withdrawn, before any download.
            await discord_sim.wait_for(
                lambda: sum(private_reply(inter) is not None for inter in burst) == 4
            )
            refused = [inter for inter in burst if private_reply(inter) is not None]
            checked = [inter for inter in burst if inter not in refused]
            assert len(checked) == 1 and len(refused) == 4
            cap = render("quota.member_in_flight", None, maximum=3)
            assert [private_reply(inter) for inter in refused] == [cap] * 4
            await discord_sim.wait_for(
                lambda: all(inter.original_message.deleted for inter in refused)
            )
            await discord_sim.wait_for(lambda: cdn_downloads(discord_sim))
            assert len(cdn_downloads(discord_sim)) == 1
        finally:
            gate.set()
        await card_shows(discord_sim, checked[0].original_message, "Queued")
        counts = await app.bot.desk.jobs.count_by_status()
        assert sum(counts.values()) == 3
    assert len(cdn_downloads(discord_sim)) == 1


class Waiter(logging.Handler):
    """Sets an event when a log record containing ``words`` is emitted (on the loop)."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words
        self.seen = asyncio.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if self.words in line:
            self.lines.append(line)
            self.seen.set()


@pytest.fixture
def download_failures() -> Iterator[Waiter]:
    waiter = Waiter("download failed")
    logger = logging.getLogger("hailuo.jobs.delivering")
    logger.addHandler(waiter)
    yield waiter
    logger.removeHandler(waiter)


@pytest.mark.parametrize(
    "body",
    [b"<!doctype html><html><body>Access denied</body></html>", bytes(range(256)) * 64],
    ids=["html", "noise"],
)
async def test_ftyp_a_result_that_is_not_an_mp4_never_reaches_the_channel(
    discord_sim, minimax, env, download_failures: Waiter, body: bytes
) -> None:
    minimax.video = body
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat surfing"})
        await inter.wait_response()
        await discord_sim.wait_for(lambda: minimax.tasks or None)
        (task_id,) = minimax.tasks
        minimax.complete(task_id)
        await asyncio.wait_for(download_failures.seen.wait(), timeout=20)
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, inter.user_id))[
            0
        ]
        # Retried on the delivery's budget of time; no post was even attempted.
        assert job.status is JobStatus.SUCCEEDED and job.delivered_message_id is None
        assert job.delivery_attempts == 0
    assert "not an MP4" in download_failures.lines[0]
    room = channel(discord_sim)
    assert room.videos() == []
    assert all(not m.attachments and "/download/" not in m.content for m in room.bot_messages())
    assert "Delivered" not in str(inter.original_message.embeds)
