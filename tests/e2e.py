"""Run the real bot (bot.py's object graph, the real discord.py client) against simulators."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import yarl

from bot import App, application
from hailuo.i18n.messages import render
from hailuo.settings import load_settings
from storage.audit import AuditAction, AuditRepository
from tests.discord_sim import DiscordSimulator, SimGuild, SimInteraction, SimMessage
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


@dataclass
class SimSetup:
    """How conftest's ``discord_sim`` and ``minimax`` fixtures start their simulators.

    A test module changes it by defining its own ``sim_setup`` fixture.
    """

    guilds: list[SimGuild] | None = None  # None: the Discord simulator's default server
    minimax: dict[str, Any] = field(default_factory=dict)  # MiniMaxSimulator's options

    @classmethod
    def held(cls, guilds: list[SimGuild] | None = None) -> SimSetup:
        """MiniMax tasks run until the test completes them (``polls_until_done=None``)."""
        return cls(guilds, {"polls_until_done": None})


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


def channel(sim: DiscordSimulator) -> Channel:
    """The first channel of the first server."""
    return Channel(sim, sim.guilds[0].channels[0].id)


def custom_ids(message: SimMessage) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row["components"]]


def press(sim: DiscordSimulator, action: str, job_id: int, message: SimMessage, user: int, **kw):
    """Press a job's button (``hailuo:<action>:<job id>``) on ``message``."""
    return sim.send_component(
        f"hailuo:{action}:{job_id}", message_id=message.id, user_id=user, **kw
    )


async def card_shows(sim: DiscordSimulator, card: SimMessage, words: str, **kw: Any) -> None:
    """Wait until the status card's embeds say ``words``."""
    await sim.wait_for(lambda: words in str(card.embeds), **kw)


async def private_text(inter: SimInteraction) -> str:
    """The interaction's own answer, which must be ephemeral."""
    await inter.wait_response()
    assert inter.ephemeral, inter.response_data
    return str((inter.response_data or {}).get("content"))


async def private_answer(sim: DiscordSimulator, inter: SimInteraction) -> str:
    """The ephemeral text the member was shown (a response or a follow-up)."""
    await inter.wait_response()
    text: str = await sim.wait_for(
        lambda: (
            inter.response_data.get("content")
            if inter.ephemeral and inter.response_data
            else next((f.content for f in inter.followups if f.ephemeral), None)
        )
    )
    return text


async def audit_count(app: App, sim: DiscordSimulator, action: AuditAction) -> int:
    page = await AuditRepository(app.bot.services.db).page(sim.guilds[0].id, action=action)
    return len(page.entries)


#: The card a ``/hailuo text`` answers with before its job exists (a burst answers first).
CHECKING = render("status.checking_request", "en-US")


def private_reply(inter: SimInteraction) -> str | None:
    """The member's private answer: the ephemeral response, else an ephemeral follow-up."""
    if inter.ephemeral:
        return str((inter.response_data or {}).get("content"))
    return next((f.content for f in inter.followups if f.ephemeral), None)


def settled(inter: SimInteraction) -> bool:
    """Whether a ``/hailuo text`` request has its outcome: a private refusal, or a card that
    shows its job (answered with it, or filled in after a "checking your request" card)."""
    if private_reply(inter) is not None:
        return True
    card = inter.original_message
    return card is not None and not card.deleted and CHECKING not in str(card.embeds)


async def all_settled(sim: DiscordSimulator, inters: list[SimInteraction], **kw: Any) -> None:
    """Wait until every request of a burst has its outcome (its job or its refusal)."""
    await sim.wait_for(lambda: all(settled(inter) for inter in inters), **kw)
