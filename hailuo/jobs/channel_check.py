"""``doctor``'s look at the bot's permissions in each channel a server configured.

Through Discord's REST API with the bot's token (plain HTTP: the core never imports
discord): the bot's own user, each channel's overwrites, its server's roles and the
bot's roles there, combined as Discord does (``hailuo.jobs.access.permissions_from``). What a
job needs (``hailuo.jobs.access.REQUIRED``) and is missing is listed per channel; a channel
that cannot be read is said to be so, with the HTTP status, never the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from hailuo.i18n.messages import render
from hailuo.jobs import access
from storage.channels import ConfiguredChannel

log = logging.getLogger(__name__)


class CannotRead(Exception):
    """A REST read failed; the message is safe to print (a status, never the token)."""


@dataclass(frozen=True)
class ChannelVerdict:
    channel: ConfiguredChannel
    missing: tuple[str, ...] = ()  # permission names
    problem: str | None = None  # why it could not be read

    def line(self) -> str:
        where = f"#{self.channel.channel_id} ({self.channel.use}, server {self.channel.guild_id})"
        if self.problem is not None:
            return f"{where}: cannot read its permissions: {self.problem}"
        if not self.missing:
            return f"{where}: ok"
        names = ", ".join(render(f"permission.{name}") for name in self.missing)
        return f"{where}: MISSING {names}"


class DiscordReader:
    """The few REST reads the check needs, with the bot's token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bot {token}"}
        self._guilds: dict[int, tuple[list[dict[str, Any]], list[int]]] = {}
        self._me: int | None = None

    async def get(self, path: str) -> Any:
        try:
            async with self.session.get(self.base_url + path, headers=self.headers) as reply:
                if reply.status != 200:
                    raise CannotRead(f"HTTP {reply.status}")
                return await reply.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:  # no answer, or not JSON
            raise CannotRead(type(exc).__name__) from None
        except TimeoutError:
            raise CannotRead("timeout") from None

    async def me(self) -> int:
        if self._me is None:
            self._me = int((await self.get("/users/@me"))["id"])
        return self._me

    async def guild(self, guild_id: int) -> tuple[list[dict[str, Any]], list[int]]:
        """The server's roles and the bot's role ids there."""
        if guild_id not in self._guilds:
            roles = await self.get(f"/guilds/{guild_id}/roles")
            member = await self.get(f"/guilds/{guild_id}/members/{await self.me()}")
            self._guilds[guild_id] = (list(roles), [int(r) for r in member.get("roles", [])])
        return self._guilds[guild_id]

    async def verdict(self, channel: ConfiguredChannel) -> ChannelVerdict:
        try:
            data = await self.get(f"/channels/{channel.channel_id}")
            guild_id = int(data.get("guild_id") or channel.guild_id)
            roles, mine = await self.guild(guild_id)
            value = access.permissions_from(
                guild_id=guild_id,
                roles=roles,
                member_roles=mine,
                member_id=await self.me(),
                overwrites=data.get("permission_overwrites") or [],
            )
        except CannotRead as exc:
            return ChannelVerdict(channel, problem=str(exc))
        return ChannelVerdict(channel, missing=tuple(access.missing(access.granted_names(value))))


async def check_channels(
    channels: list[ConfiguredChannel],
    *,
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
) -> list[ChannelVerdict]:
    reader = DiscordReader(session, base_url, token)
    return [await reader.verdict(channel) for channel in channels]
