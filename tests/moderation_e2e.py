"""Helpers of the moderation end-to-end tests: a server with a log channel, admins, members."""

from __future__ import annotations

from typing import Any

import discord

from bot import App
from storage.db import Database
from tests.discord_sim import (
    EVERYONE_PERMISSIONS,
    DiscordSimulator,
    SimChannel,
    SimGuild,
    SimInteraction,
    SimMessage,
    SimRole,
)

MANAGE_GUILD = discord.Permissions(manage_guild=True).value
ADMIN_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_GUILD
ADMIN = 7_000_001


def moderated_guild() -> SimGuild:
    """Channels: general, art, mod-log; roles: Creators, Moderators, Trusted."""
    return SimGuild(
        channels=[SimChannel("general"), SimChannel("art"), SimChannel("mod-log")],
        roles=[SimRole("Creators"), SimRole("Moderators"), SimRole("Trusted")],
    )


def role(value: int) -> dict[str, object]:
    return {"type": 8, "value": str(value)}


def channel(value: int) -> dict[str, object]:
    return {"type": 7, "value": str(value)}


def user(value: int) -> dict[str, object]:
    return {"type": 6, "value": str(value)}


async def admin(
    sim: DiscordSimulator,
    path: str | list[str],
    options: dict[str, Any] | None = None,
    *,
    permissions: int = ADMIN_PERMISSIONS,
    user_id: int = ADMIN,
    **kw: Any,
) -> SimInteraction:
    """Run ``/hailuo-admin <path>`` and wait for its (always ephemeral) answer."""
    sub = [path] if isinstance(path, str) else path
    inter = await sim.send_slash(
        ["hailuo-admin", *sub], options, permissions=permissions, user_id=user_id, **kw
    )
    await inter.wait_response()
    assert inter.ephemeral, inter.response_data
    return inter


async def generate(sim: DiscordSimulator, prompt: str, **kw: Any) -> SimInteraction:
    inter = await sim.send_slash(["hailuo", "text"], {"prompt": prompt}, **kw)
    await inter.wait_response()
    return inter


def said(inter: SimInteraction) -> str:
    return str((inter.response_data or {}).get("content"))


def embed_text(inter: SimInteraction) -> str:
    """Title, description and fields of the answer's embeds, as one text."""
    parts: list[str] = []
    for embed in (inter.response_data or {}).get("embeds") or []:
        parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


def logged(sim: DiscordSimulator, channel_id: int) -> list[SimMessage]:
    """The bot's posts in the log channel (not the ephemeral answers shown there)."""
    return [
        m
        for m in sim.channel_messages(channel_id, include_ephemeral=False)
        if m.interaction_id is None
    ]


def log_titles(sim: DiscordSimulator, channel_id: int) -> list[str]:
    return [str(m.embeds[0].get("title")) for m in logged(sim, channel_id)]


async def mirrored(app: App) -> None:
    """Wait until the audit rows committed so far are posted to the log channel."""
    assert app.bot.services.audit is not None
    await app.bot.services.audit.drained()


async def count(db: Database, table: str) -> int:
    assert table in {"audit", "ledger", "jobs", "strikes", "blocks"}
    row = await db.fetch_one(f"SELECT COUNT(*) FROM {table}")  # a name from the set above
    assert row is not None
    return int(row[0])
