"""Crash safety: the bot is killed with SIGKILL mid-job and started again on its database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.discord_sim import DiscordSimulator
from tests.e2e import bot_env, card_shows, channel, minimax_env
from tests.sims.minimax import MiniMaxSimulator

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """``python bot.py`` in a child process, configured only through its environment."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {**os.environ, **env}
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        log = (self.workdir / f"bot-{self.runs}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bot.py"),
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=10)
            except TimeoutError:
                await self.kill()


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[DiscordSimulator, MiniMaxSimulator, BotProcess]]:
    async with DiscordSimulator() as discord_sim, MiniMaxSimulator(polls_until_done=None) as mm:
        env = bot_env(discord_sim, tmp_path / "bot.sqlite3", **minimax_env(mm))
        bot = BotProcess(env, tmp_path)
        try:
            yield discord_sim, mm, bot
        finally:
            await bot.stop()
        assert mm.violations == []


async def ready(sim: DiscordSimulator, sessions: int) -> None:
    await sim.wait_for(lambda: sim.identifies >= sessions, timeout=30)
    # READY and GUILD_CREATE are sent right after IDENTIFY; a command answered proves the tree.
    inter = await sim.send_slash(["hailuo", "quota"])
    await inter.wait_response()


async def restarted(sim: DiscordSimulator, bot: BotProcess) -> None:
    """Kill ``bot`` and start it again; back once the new process has its own gateway session.

    Counted from the kill: the killed process may have died before it identified, its work
    all done over REST (a start recovers and delivers before it connects to the gateway)."""
    await bot.kill()
    sessions = sim.identifies
    await bot.start()
    await ready(sim, sessions + 1)


async def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Watch another process's database (no event to await across processes)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def job_rows(database: Path) -> list[tuple[str, str | None]]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute("SELECT status, failure_rule FROM jobs ORDER BY id").fetchall()


def card_ids(database: Path) -> list[int | None]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return [r[0] for r in conn.execute("SELECT status_message_id FROM jobs ORDER BY id")]


def ledger_kinds(database: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY id")]


async def test_killed_while_the_provider_runs_the_task(world, tmp_path: Path) -> None:
    discord_sim, mm, bot = world
    room = channel(discord_sim)
    await bot.start()
    await ready(discord_sim, 1)
    inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "survive a crash"})
    await inter.wait_response()
    await discord_sim.wait_for(lambda: len(mm.requests_to("query")) >= 2, timeout=30)
    await bot.kill()

    task_id = next(iter(mm.tasks))
    mm.complete(task_id)
    await bot.start()
    await discord_sim.wait_for(lambda: room.videos(), timeout=30)
    assert len(mm.requests_to("submit")) == 1
    await wait_until(lambda: job_rows(tmp_path / "bot.sqlite3")[0][0] == "delivered")

    # A third start on the same database posts nothing again.
    await restarted(discord_sim, bot)
    assert len(room.videos()) == 1
    assert room.videos()[0].attachments[0].data == mm.video
    assert ledger_kinds(tmp_path / "bot.sqlite3") == ["reserve", "charge"]


async def test_killed_while_submitting_is_never_sent_twice(world, tmp_path: Path) -> None:
    discord_sim, mm, bot = world
    mm.inject("submit", "hang")
    await bot.start()
    await ready(discord_sim, 1)
    inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "caught mid-submit"})
    await inter.wait_response()
    database = tmp_path / "bot.sqlite3"
    # The intent is committed before the call; the simulator holds the call open.
    await wait_until(lambda: job_rows(database) == [("submitting", None)])
    # Killed once the card's id is stored too (a kill before it is the first-answer gap,
    # tested in tests/test_first_answer_gap.py: the end then comes as a new message).
    await wait_until(lambda: card_ids(database) != [None])
    # And once the call has reached the provider (on a loaded machine the intent can be
    # committed well before the request arrives): the kill leaves it sent, unanswered.
    await wait_until(lambda: len(mm.requests_to("submit")) == 1)
    await bot.kill()

    await bot.start()
    await wait_until(lambda: job_rows(database)[0][0] == "failed")
    assert job_rows(database)[0][1] == "job.interrupted_submit"
    assert ledger_kinds(database) == ["reserve", "refund"]
    card = inter.original_message
    await card_shows(discord_sim, card, "not charged twice", timeout=30)
    await ready(discord_sim, 2)
    assert len(mm.requests_to("submit")) == 1
