"""The simulator's world: users, guilds, messages, interactions, and what was recorded.

Route handlers and the gateway work on a :class:`SimState`; :class:`DiscordSimulator` adds the
server lifecycle and the test-facing controls on top of it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import urllib.parse
from collections.abc import Callable

from .gateway import Gateway
from .interactions import SimInteraction
from .messages import SimMessage, file_parts_by_index, guess_content_type
from .models import (
    BOT_PERMISSIONS,
    BOT_ROLE_NAME,
    JSON,
    ApiError,
    GatewayFrame,
    RecordedCall,
    SimChannel,
    SimGuild,
    SimMember,
    SimRole,
    SimUser,
    StoredAttachment,
    snowflake_at,
)
from .rest import ApiRequest


class SimState:
    """Shared state and the helpers the REST routes and the gateway use to change it.

    Ids come from the injected ``clock`` so snowflake times agree with the rules' clock.
    """

    def __init__(
        self,
        *,
        token: str,
        application_id: int | None,
        clock: Callable[[], float],
        guilds: list[SimGuild] | None,
        upload_limit: int,
        attachment_size_limit: int,
        heartbeat_interval_ms: int,
        nonce_window: float,
        shard_count: int = 1,
    ) -> None:
        self.token = token
        #: The shard count ``GET /gateway/bot`` recommends.
        self.shard_count = shard_count
        #: Discord closes a session with more guilds than this with 4011 (it is 2,500).
        self.max_guilds_per_session: int | None = None
        self.clock = clock
        self.upload_limit = upload_limit
        self.attachment_size_limit = attachment_size_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.nonce_window = nonce_window
        self.application_id = application_id or snowflake_at(clock())
        self.bot_user = SimUser(self.application_id, "SimBot", bot=True)
        self.owner = SimUser(snowflake_at(clock()), "owner")
        self.default_user = SimUser(snowflake_at(clock()), "tester")
        self.users: dict[int, SimUser] = {
            u.id: u for u in (self.bot_user, self.owner, self.default_user)
        }
        self.guilds: list[SimGuild] = guilds if guilds is not None else [SimGuild()]
        for guild in self.guilds:
            self._seed_guild(guild)
        self.dm_channels: dict[int, SimChannel] = {}
        #: Users who take no direct message from the bot (50007 on a DM post).
        self.closed_dms: set[int] = set()
        self.messages: dict[int, SimMessage] = {}
        self.nonces: dict[tuple[int, int, str], SimMessage] = {}
        self.interactions: dict[int, SimInteraction] = {}
        self.commands: dict[int | None, list[JSON]] = {}
        self.cdn_files: dict[str, tuple[bytes, str | None]] = {}
        #: CDN paths whose file goes on with this many zero bytes (``SimAttachment.extra``),
        #: and how many bytes the CDN managed to write for each before the reader hung up.
        self.cdn_extra: dict[str, int] = {}
        self.cdn_sent: dict[str, int] = {}
        #: While set and not yet open, CDN answers wait (downloads held in flight).
        self.cdn_gate: asyncio.Event | None = None
        self.calls: list[RecordedCall] = []
        self.command_syncs: list[RecordedCall] = []
        self.gateway_log: list[GatewayFrame] = []
        self.identify_payloads: list[JSON] = []
        self.internal_errors: list[str] = []
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._tokens: dict[str, SimInteraction] = {}
        self._changed = asyncio.Condition()
        self._gateway = Gateway(self)
        self._port: int | None = None

    def _seed_guild(self, guild: SimGuild) -> None:
        """The bot and the default tester are members of every guild; the owner owns it.

        The bot holds its own role (``BOT_PERMISSIONS``, ``SimGuild.bot_role``):
        ``app_permissions`` and the REST view of roles agree with it.
        """
        if guild.owner_id is None:
            guild.owner_id = self.owner.id
        now = self.clock()
        for user in (self.bot_user, self.default_user):
            guild.members.setdefault(user.id, SimMember(user.id, joined_at=now))
        role = guild.bot_role
        if role is None:
            role = guild.bot_role = SimRole(BOT_ROLE_NAME, BOT_PERMISSIONS, id=snowflake_at(now))
        bot = guild.members[self.bot_user.id]
        if role.id not in bot.roles:
            bot.roles.append(role.id)

    def app_permissions(self, guild: SimGuild, channel: SimChannel) -> int:
        """The bot's permissions in ``channel``, as Discord sends them in ``app_permissions``."""
        return guild.permissions_in(channel, guild.members[self.bot_user.id])

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("DiscordSimulator.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE`` (and the bot's DISCORD_API_BASE_URL)."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (and DISCORD_GATEWAY_URL)."""
        return self.base_url.replace("http://", "ws://", 1) + "/"

    # -- observation ----------------------------------------------------------------------

    async def notify(self) -> None:
        """Wake :meth:`wait_for` waiters (call it when a predicate reads state outside the sim)."""
        async with self._changed:
            self._changed.notify_all()

    async def record(self, call: RecordedCall) -> None:
        self.calls.append(call)
        if call.method == "PUT" and call.route is not None and call.route.endswith("/commands"):
            self.command_syncs.append(call)
        if call.interaction_id is None and (call.route or "").endswith("/callback"):
            # An injected fault answers before the route links the call to its interaction.
            parts = call.path.split("/")
            if len(parts) > 2 and parts[2].isdigit():
                call.interaction_id = int(parts[2])
        inter = self.interactions.get(call.interaction_id or 0)
        if inter is not None:
            inter.note_call(call)
        await self.notify()

    async def log_frame(self, frame: GatewayFrame) -> None:
        self.gateway_log.append(frame)
        await self.notify()

    def find_calls(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[RecordedCall]:
        """Recorded calls filtered by method and by ``re.search`` on the API-relative path."""
        pattern = re.compile(path_regex) if path_regex else None
        return [
            c
            for c in self.calls
            if (method is None or c.method == method)
            and (pattern is None or pattern.search(c.path))
        ]

    def channel_messages(
        self, channel_id: int, *, include_deleted: bool = True, include_ephemeral: bool = True
    ) -> list[SimMessage]:
        """Messages stored for a channel, oldest first; deleted ones keep ``deleted=True``."""
        return [
            m
            for m in sorted(self.messages.values(), key=lambda m: m.id)
            if m.channel_id == channel_id
            and (include_deleted or not m.deleted)
            and (include_ephemeral or not m.ephemeral)
        ]

    def interaction_by_token(self, token: str) -> SimInteraction | None:
        return self._tokens.get(token)

    def _cdn_put(
        self,
        folder: int,
        file_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        extra: int = 0,
    ) -> str:
        path = f"/cdn/attachments/{folder}/{file_id}/{filename}"
        self.cdn_files[path] = (data, content_type)
        if extra:
            self.cdn_extra[path] = extra
        now = int(self.clock())
        signature = f"ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        return f"{self.base_url}{urllib.parse.quote(path)}?{signature}"

    # -- lookups and changes used by the routes -------------------------------------------

    def command_id(self, scope: int | None, name: str, kind: int) -> int:
        """A stable id per (scope, name, type), as Discord keeps ids across bulk overwrites."""
        key = (scope, name, kind)
        if key not in self._command_ids:
            self._command_ids[key] = snowflake_at(self.clock())
        return self._command_ids[key]

    def _command_scope(self, guild_id: int, name: str) -> int | None:
        registered = self.commands.get(guild_id, [])
        return guild_id if any(c.get("name") == name for c in registered) else None

    def find_guild(self, guild_id: int) -> SimGuild | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    def require_guild(self, guild_id: int) -> SimGuild:
        guild = self.find_guild(guild_id)
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def find_channel(self, channel_id: int) -> SimChannel | None:
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel
        return next((c for c in self.dm_channels.values() if c.id == channel_id), None)

    def require_channel(self, channel_id: int) -> SimChannel:
        channel = self.find_channel(channel_id)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def guild_for_channel(self, channel_id: int) -> SimGuild | None:
        channel = self.find_channel(channel_id)
        return (
            None
            if channel is None or channel.guild_id is None
            else self.find_guild(channel.guild_id)
        )

    def dm_channel(self, user_id: int) -> SimChannel:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = SimChannel(
                name="", type=1, recipient_id=user_id, id=snowflake_at(self.clock())
            )
        return self.dm_channels[user_id]

    def ensure_user(self, user_id: int) -> SimUser:
        if user_id not in self.users:
            self.users[user_id] = SimUser(user_id, f"user{len(self.users)}")
        return self.users[user_id]

    def upload_limit_for(self, channel: SimChannel) -> int:
        guild = self.guild_for_channel(channel.id)
        return guild.upload_limit if guild is not None and guild.upload_limit else self.upload_limit

    def store_uploads(
        self, req: ApiRequest, *, limit: int, channel_id: int
    ) -> list[StoredAttachment]:
        """Turn ``files[n]`` parts into CDN-served attachments; any part over ``limit`` -> 413."""
        body = req.body()
        meta = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        stored: list[StoredAttachment] = []
        for index, part in sorted(file_parts_by_index(req.parts).items()):
            if len(part.data) > limit:
                raise ApiError(413, 40005, "Request entity too large")
            info = meta.get(str(index), {})
            filename = str(info.get("filename") or part.filename or f"file{index}")
            attachment_id = snowflake_at(self.clock())
            content_type = guess_content_type(filename)
            url = self._cdn_put(channel_id, attachment_id, filename, part.data, content_type)
            stored.append(
                StoredAttachment(
                    attachment_id, filename, part.data, content_type, url, info.get("description")
                )
            )
        return stored

    def new_message(
        self,
        channel: SimChannel,
        body: JSON,
        uploads: list[StoredAttachment],
        *,
        author_id: int | None = None,
        interaction: SimInteraction | None = None,
        message_type: int = 0,
        extra_flags: int = 0,
    ) -> SimMessage:
        nonce = body.get("nonce")
        message = SimMessage(
            id=snowflake_at(self.clock()),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_id or self.bot_user.id,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            attachments=uploads,
            flags=int(body.get("flags") or 0) | extra_flags,
            nonce=str(nonce) if nonce is not None else None,
            type=message_type,
            application_id=self.application_id if interaction else None,
            interaction_id=interaction.id if interaction else None,
        )
        self.messages[message.id] = message
        return message

    def message_payload(self, message: SimMessage) -> JSON:
        inter = self.interactions.get(message.interaction_id or 0)
        meta = None
        if inter is not None and message is inter.original_message:
            user = self.users[inter.user_id]
            meta = {
                "id": str(inter.id),
                "type": inter.type,
                "user": user.payload(),
                "authorizing_integration_owners": inter.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        return message.payload(self.users[message.author_id], meta)

    async def publish(self, message: SimMessage, event: str) -> None:
        """Tell the gateway about a visible message change (never for ephemeral messages)."""
        if message.ephemeral:
            return
        data = self.message_payload(message)
        guild = self.find_guild(message.guild_id or 0)
        if guild is not None and message.author_id in guild.members:
            member = guild.members[message.author_id].payload(self.users[message.author_id])
            member.pop("user")
            data["member"] = member
        await self._gateway.dispatch(event, data)

    async def delete_message(self, message: SimMessage) -> None:
        message.deleted = True
        message.deleted_at = self.clock()
        if message.ephemeral:
            return
        data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self._gateway.dispatch("MESSAGE_DELETE", data)

    def ready_payload(
        self, session_id: str, shard: list[int] | None, guilds: list[SimGuild] | None = None
    ) -> JSON:
        """READY as discord.py's ``parse_ready`` reads it; guilds (the session's shard's)
        follow as GUILD_CREATE."""
        user = self.bot_user.payload()
        user.update(verified=True, mfa_enabled=False, flags=0)
        payload: JSON = {
            "v": 10,
            "user": user,
            "guilds": [
                {"id": str(g.id), "unavailable": True}
                for g in (self.guilds if guilds is None else guilds)
            ],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if shard is not None:
            payload["shard"] = shard
        return payload

    def guild_create_payload(self, guild: SimGuild) -> JSON:
        return guild.payload(self.users, gateway=True)
