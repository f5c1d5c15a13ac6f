"""A crash in the first answer's gap does not silence the job (issue 10): ``-k first_answer_gap``.

``/hailuo text`` answers with its card, then stores the card's ids. The bot is killed
with SIGKILL exactly there (``tests/seams/first_answer_gap.py`` pauses at that point),
leaving a job with a channel and no card. After a restart on the same database the job
runs to its end, and since it has no card it tells the member how it ended with a new
message in its channel that mentions them, once; that message becomes its card.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.discord_sim import DiscordSimulator
from tests.e2e import bot_env, channel, minimax_env
from tests.sims.minimax import MiniMaxSimulator
from tests.test_restart import BotProcess, ready, restarted, wait_until

pytestmark = pytest.mark.timeout(90)
SEAM = Path(__file__).resolve().parent / "seams" / "first_answer_gap.py"
MEMBER = 7301


class GapBotProcess(BotProcess):
    """The bot with the seam: it stops between the first answer and storing its ids."""

    async def start(self) -> None:
        self.runs += 1
        log = (self.workdir / f"gap-bot-{self.runs}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SEAM), cwd=self.workdir, env=self.env, stdout=log, stderr=log
        )
        log.close()


def job_row(database: Path) -> tuple[int, str, int | None]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        row = conn.execute("SELECT id, status, status_message_id FROM jobs").fetchone()
    return (int(row[0]), str(row[1]), row[2]) if row else (0, "", None)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[DiscordSimulator, MiniMaxSimulator]]:
    # Tasks run until the test completes them: the job cannot end before the kill.
    async with (
        DiscordSimulator() as discord_sim,
        MiniMaxSimulator(polls_until_done=None) as minimax,
    ):
        yield discord_sim, minimax
        assert minimax.violations == []
        assert discord_sim.internal_errors == []


async def test_first_answer_gap_sigkill_then_the_member_is_told_how_it_ended(
    world, tmp_path: Path
) -> None:
    discord_sim, minimax = world
    room = channel(discord_sim)
    database = tmp_path / "bot.sqlite3"
    marker = tmp_path / "gap"
    env = {**bot_env(discord_sim, database, **minimax_env(minimax)), "GAP_TEST_MARKER": str(marker)}
    gap = GapBotProcess(env, tmp_path)
    bot = BotProcess(env, tmp_path)
    try:
        await gap.start()
        await ready(discord_sim, 1)
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "gap"}, user_id=MEMBER)
        await inter.wait_response()
        first_card = inter.original_message
        assert first_card is not None and not inter.ephemeral  # the member saw the answer
        await wait_until(marker.exists)
        await gap.kill()  # between the answer and storing its ids
        job_id, _, stored = job_row(database)
        assert stored is None  # the crash lost the card's ids

        await bot.start()
        # Submitted before the kill or after the restart: finish it at the provider.
        await wait_until(lambda: bool(minimax.tasks) or job_row(database)[1] == "failed")
        for task_id in list(minimax.tasks):
            minimax.complete(task_id)
        await wait_until(lambda: job_row(database)[1] in ("delivered", "failed"))
        await wait_until(lambda: job_row(database)[2] is not None)
        status = job_row(database)[1]
        told = [m for m in room.bot_messages() if f"<@{MEMBER}>" in m.content and not m.attachments]
        assert len(told) == 1, [m.content for m in room.bot_messages()]
        card = told[0]
        assert f"#{job_id}" in card.content
        words = "Delivered" if status == "delivered" else "not charged twice"
        assert words in str(card.embeds)
        assert job_row(database)[2] == card.id  # remembered as the job's card

        # A further restart posts nothing again.
        await restarted(discord_sim, bot)
        again = [
            m for m in room.bot_messages() if f"<@{MEMBER}>" in m.content and not m.attachments
        ]
        assert [m.id for m in again] == [card.id]
        assert first_card.id != card.id  # a new message: the lost card's id was never stored
    finally:
        await bot.stop()
        await gap.stop()


async def test_first_answer_gap_job_that_ended_before_the_kill_is_announced_after_restart(
    world, tmp_path: Path
) -> None:
    """The job ends while its first answer is still in the gap (no card was known, so none
    was edited), then the process dies: the restart's first tick announces it, once."""
    discord_sim, minimax = world
    room = channel(discord_sim)
    database = tmp_path / "bot.sqlite3"
    marker = tmp_path / "gap"
    env = {**bot_env(discord_sim, database, **minimax_env(minimax)), "GAP_TEST_MARKER": str(marker)}
    gap = GapBotProcess(env, tmp_path)
    bot = BotProcess(env, tmp_path)
    try:
        await gap.start()
        await ready(discord_sim, 1)
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "gap"}, user_id=MEMBER)
        await inter.wait_response()
        await wait_until(marker.exists)
        await wait_until(lambda: bool(minimax.tasks))  # the worker goes on meanwhile
        for task_id in list(minimax.tasks):
            minimax.complete(task_id)
        await wait_until(lambda: job_row(database)[1] == "delivered")
        assert job_row(database)[2] is None
        cards = [m for m in room.bot_messages() if m.embeds and not m.attachments]
        assert [m.id for m in cards] == [inter.original_message.id]  # only the lost one
        await gap.kill()

        await bot.start()
        await wait_until(lambda: job_row(database)[2] is not None)
        job_id = job_row(database)[0]
        told = [m for m in room.bot_messages() if f"<@{MEMBER}>" in m.content and not m.attachments]
        assert len(told) == 1 and f"#{job_id}" in told[0].content
        assert "Delivered" in str(told[0].embeds)
        assert job_row(database)[2] == told[0].id
        assert len(room.videos()) == 1
    finally:
        await bot.stop()
        await gap.stop()
