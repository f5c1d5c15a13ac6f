"""Clean stops: ``python bot.py`` in a real subprocess gets SIGTERM in the middle of a step.

The step is held open by the simulator (a gate) until the bot has begun to stop,
so the stop really happens during the submit, the download or the upload. The bot
must let the step finish, exit 0 within its grace, and after a restart every job
completes exactly once: one submission, one post.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.discord_sim import DiscordSimulator
from tests.discord_sim.rest import ApiRequest, Reply, Router
from tests.e2e import bot_env, channel, minimax_env
from tests.sims.minimax import MiniMaxSimulator
from tests.test_restart import BotProcess, job_rows, ledger_kinds, ready, wait_until

pytestmark = pytest.mark.timeout(120)

#: HAILUO_STOP_GRACE_SECONDS in these tests; compose.yaml gives Docker's 60 s on top.
GRACE = 20.0
#: What the process may take beyond the grace: closing the gateway, the server, the database.
CLOSING = 5.0


class Gate:
    """Holds requests until opened; tells the test when the first one arrived."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self._open = asyncio.Event()
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def pass_through(self) -> None:
        self.arrived.set()
        await self._open.wait()


class GatedMiniMax(MiniMaxSimulator):
    """The MiniMax simulator, whose submits and CDN downloads can be held open."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.submit_gate = Gate()
        self.download_gate = Gate()

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        await self.submit_gate.pass_through()
        return await super()._submit(request)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        await self.download_gate.pass_through()
        return await super()._download(request)


class GatedDiscord(DiscordSimulator):
    """The Discord simulator, whose uploads (messages with files) can be held open."""

    def __init__(self, **options: object) -> None:
        self.upload_gate = Gate()
        super().__init__(**options)  # type: ignore[arg-type]

    def _build_router(self) -> Router:
        router = super()._build_router()
        for route in router._routes:
            if route.method == "POST" and route.template == "/channels/{channel_id}/messages":
                create = route.handler

                async def gated(req: ApiRequest, create=create) -> Reply:  # type: ignore[no-untyped-def]
                    if any(part.filename for part in req.parts):
                        await self.upload_gate.pass_through()
                    return await create(req)

                route.handler = gated
        return router


World = tuple[GatedDiscord, GatedMiniMax, BotProcess, Path]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with GatedDiscord() as discord_sim, GatedMiniMax(polls_until_done=None) as mm:
        env = bot_env(
            discord_sim,
            tmp_path / "bot.sqlite3",
            **minimax_env(mm),
            HAILUO_STOP_GRACE_SECONDS=str(GRACE),
            HAILUO_PROVIDER_TIMEOUT="30",  # the held submit must not time out meanwhile
            HAILUO_LOG_LEVEL="INFO",
        )
        bot = BotProcess(env, tmp_path)
        try:
            yield discord_sim, mm, bot, tmp_path / "bot.sqlite3"
        finally:
            for gate in (mm.submit_gate, mm.download_gate, discord_sim.upload_gate):
                gate.open()
            await bot.stop()
        assert mm.violations == []


async def sigterm(bot: BotProcess, workdir: Path) -> None:
    """Send SIGTERM and wait until the bot says it is stopping (its log, another process)."""
    assert bot.proc is not None
    bot.proc.send_signal(signal.SIGTERM)
    log = workdir / f"bot-{bot.runs}.log"
    await wait_until(lambda: "stopping: no new steps" in log.read_text(errors="replace"))


async def exits_cleanly(bot: BotProcess, within: float) -> None:
    """The process ends by itself, with status 0, inside ``within`` seconds."""
    assert bot.proc is not None
    try:
        code = await asyncio.wait_for(bot.proc.wait(), timeout=within)
    except TimeoutError:
        pytest.fail(f"the bot did not exit within {within:.0f} s of SIGTERM")
    assert code == 0


def delivery_attempts(database: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return [r[0] for r in conn.execute("SELECT delivery_attempts FROM jobs ORDER BY id")]


async def start_job(discord_sim: GatedDiscord, bot: BotProcess, prompt: str) -> None:
    await bot.start()
    await ready(discord_sim, 1)
    inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
    await inter.wait_response()


async def restart_posts_nothing_more(
    discord_sim: GatedDiscord, mm: GatedMiniMax, bot: BotProcess, database: Path
) -> None:
    """A second start on the same database: the job stays delivered once, submitted once."""
    await bot.start()
    await ready(discord_sim, bot.runs)
    room = channel(discord_sim)
    assert len(room.videos()) == 1
    assert room.videos()[0].attachments[0].data == mm.video
    assert len(mm.requests_to("submit")) == 1
    assert job_rows(database) == [("delivered", None)]
    assert ledger_kinds(database) == ["reserve", "charge"]
    await sigterm(bot, database.parent)
    await exits_cleanly(bot, GRACE + CLOSING)


async def test_sigterm_during_a_submit_records_its_outcome(world: World) -> None:
    discord_sim, mm, bot, database = world
    mm.submit_gate.close()
    await start_job(discord_sim, bot, "stopped while submitting")
    await mm.submit_gate.arrived.wait()
    assert job_rows(database) == [("submitting", None)]

    await sigterm(bot, database.parent)
    mm.submit_gate.open()  # the provider answers while the bot is stopping
    await exits_cleanly(bot, GRACE + CLOSING)
    # The answer was recorded: the task id is stored, nothing was refunded.
    assert job_rows(database) == [("submitted", None)]
    assert ledger_kinds(database) == ["reserve"]

    mm.complete(next(iter(mm.tasks)))
    await bot.start()
    room = channel(discord_sim)
    await discord_sim.wait_for(lambda: room.videos(), timeout=30)
    await wait_until(lambda: job_rows(database) == [("delivered", None)])
    assert len(mm.requests_to("submit")) == 1
    await sigterm(bot, database.parent)
    await exits_cleanly(bot, GRACE + CLOSING)
    await restart_posts_nothing_more(discord_sim, mm, bot, database)


@pytest.mark.parametrize("step", ["download", "upload"])
async def test_sigterm_during_a_delivery_step_finishes_the_delivery(
    world: World, step: str
) -> None:
    """Stopped while the result is downloaded from the provider, or uploaded to Discord."""
    discord_sim, mm, bot, database = world
    gate = mm.download_gate if step == "download" else discord_sim.upload_gate
    gate.close()
    await start_job(discord_sim, bot, f"stopped while {step}ing")
    await wait_until(lambda: bool(mm.tasks))
    mm.complete(next(iter(mm.tasks)))
    await gate.arrived.wait()

    await sigterm(bot, database.parent)
    gate.open()
    await exits_cleanly(bot, GRACE + CLOSING)
    assert job_rows(database) == [("delivered", None)]
    await restart_posts_nothing_more(discord_sim, mm, bot, database)


# -- a step that outlives the grace -------------------------------------------------------

SHORT = 1.0


async def log_says(bot: BotProcess, workdir: Path, text: str) -> None:
    log = workdir / f"bot-{bot.runs}.log"
    await wait_until(lambda: text in log.read_text(errors="replace"))


async def test_sigterm_with_a_download_longer_than_the_grace_exits_and_delivers_once_later(
    world: World,
) -> None:
    discord_sim, mm, bot, database = world
    bot.env["HAILUO_STOP_GRACE_SECONDS"] = str(SHORT)
    mm.download_gate.close()
    await start_job(discord_sim, bot, "a download that does not end")
    await wait_until(lambda: bool(mm.tasks))
    mm.complete(next(iter(mm.tasks)))
    await mm.download_gate.arrived.wait()

    await sigterm(bot, database.parent)
    await exits_cleanly(bot, SHORT + CLOSING)  # the held download is cut off
    assert job_rows(database) == [("succeeded", None)]
    # An attempt is counted just before posting; the cut-off download never got there.
    assert delivery_attempts(database) == [0]
    assert channel(discord_sim).videos() == []

    mm.download_gate.open()
    await bot.start()
    room = channel(discord_sim)
    await discord_sim.wait_for(lambda: room.videos(), timeout=30)
    await wait_until(lambda: job_rows(database) == [("delivered", None)])
    await sigterm(bot, database.parent)
    await exits_cleanly(bot, SHORT + CLOSING)
    await restart_posts_nothing_more(discord_sim, mm, bot, database)


async def test_sigterm_with_a_submit_longer_than_the_grace_still_records_it(
    world: World,
) -> None:
    discord_sim, mm, bot, database = world
    bot.env["HAILUO_STOP_GRACE_SECONDS"] = str(SHORT)
    mm.submit_gate.close()
    await start_job(discord_sim, bot, "a slow submit")
    await mm.submit_gate.arrived.wait()

    await sigterm(bot, database.parent)
    # The grace is over and the step cancelled; the call itself is shielded and goes on.
    await log_says(bot, database.parent, "steps still running at the end of the stop grace")
    assert bot.proc is not None and bot.proc.returncode is None
    mm.submit_gate.open()
    await exits_cleanly(bot, 30 + CLOSING)  # HAILUO_PROVIDER_TIMEOUT bounds the call
    assert job_rows(database) == [("submitted", None)]
    assert ledger_kinds(database) == ["reserve"]

    mm.complete(next(iter(mm.tasks)))
    await bot.start()
    room = channel(discord_sim)
    await discord_sim.wait_for(lambda: room.videos(), timeout=30)
    await wait_until(lambda: job_rows(database) == [("delivered", None)])
    await sigterm(bot, database.parent)
    await exits_cleanly(bot, SHORT + CLOSING)
    await restart_posts_nothing_more(discord_sim, mm, bot, database)
