"""Run the real bot (bot.py's object graph, the real discord.py client) against simulators."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import yarl

from bot import App, application
from hailuo.settings import load_settings
from tests.discord_sim import DiscordSimulator, SimMessage
from tests.sims.minimax import MiniMaxSimulator


def bot_env(discord_sim: DiscordSimulator, database: Path, **extra: str) -> dict[str, str]:
    env = {
        "DISCORD_TOKEN": "sim-token",
        "DISCORD_API_BASE_URL": discord_sim.api_base,
        "DISCORD_GATEWAY_URL": discord_sim.gateway_url,
        "HAILUO_DATABASE": str(database),
        "HAILUO_POLL_SECONDS": "0.05",
        "HAILUO_PROVIDER_TIMEOUT": "2",
        "HAILUO_HTTP_PORT": "0",
        "HAILUO_ALLOW_PRIVATE_URLS": "1",
    }
    env.update(extra)
    return env


def minimax_env(sim: MiniMaxSimulator) -> dict[str, str]:
    return {"MINIMAX_API_KEY": sim.api_key, "MINIMAX_BASE_URL": sim.base_url}


@contextlib.contextmanager
def restore_discord_urls() -> contextlib.AbstractContextManager[None]:  # type: ignore[misc]
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    try:
        yield
    finally:
        discord.http.Route.BASE = saved[0]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(str(saved[1]))


@contextlib.asynccontextmanager
async def running_bot(env: dict[str, str], **options: object) -> AsyncIterator[App]:
    """Start the bot in this process and wait until its gateway session is ready."""
    settings = load_settings(environ=env, dotenv_path=None)
    with restore_discord_urls():
        async with application(settings, guild_ready_timeout=0.1, **options) as app:
            runner = asyncio.create_task(app.bot.start(settings.discord_token.reveal()))
            ready = asyncio.create_task(app.bot.wait_until_ready())
            done, _ = await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                ready.cancel()
                runner.result()  # raises what stopped the bot
                raise RuntimeError("the bot stopped before it was ready")
            try:
                yield app
            finally:
                await app.bot.close()
                await runner


@dataclass
class Channel:
    sim: DiscordSimulator
    channel_id: int

    def bot_messages(self) -> list[SimMessage]:
        return [m for m in self.sim.channel_messages(self.channel_id) if not m.deleted]

    def videos(self) -> list[SimMessage]:
        return [
            m
            for m in self.bot_messages()
            if any(a.filename.endswith(".mp4") for a in m.attachments)
        ]
