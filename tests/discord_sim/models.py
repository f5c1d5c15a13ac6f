"""Plain data the simulator keeps: ids, users, guilds, channels, recorded calls, errors.

Everything here is a dataclass with a ``payload()`` method that renders the exact JSON shape
discord.py 2.7.1 parses (see /work/shared/discord.md section 5), so the REST and gateway layers
never hand-build the same dictionary twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import discord

JSON = dict[str, Any]

EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
COMPONENTS_V2 = 1 << 15

# Typical @everyone permissions of a fresh server; the member that runs a slash command gets these.
EVERYONE_PERMISSIONS: int = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
    create_public_threads=True,
).value
# What the bot's own role grants it; ``app_permissions`` is computed from it and the
# channel's overwrites (a test denies the bot a permission with an overwrite on its role).
BOT_PERMISSIONS: int = EVERYONE_PERMISSIONS | discord.Permissions(manage_messages=True).value
ADMINISTRATOR: int = discord.Permissions(administrator=True).value
ALL_PERMISSIONS: int = discord.Permissions.all().value

BOT_ROLE_NAME = "SimBot"

_low_bits = itertools.count(1)


def snowflake_at(timestamp: float) -> int:
    """A real Discord id for ``timestamp``: discord.py derives created_at/expiry from it.

    The low 22 bits (worker/process/increment in Discord's layout) carry a counter, so ids
    made within one millisecond stay unique and ordered.
    """
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return discord.utils.time_snowflake(when) | (next(_low_bits) & 0x3FFFFF)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard whose gateway session carries a guild's events, by Discord's formula."""
    return (guild_id >> 22) % shard_count


def guild_id_on_shard(shard_id: int, shard_count: int, near: float) -> int:
    """A guild id (a snowflake about ``near``) that lands on ``shard_id`` of ``shard_count``."""
    base = snowflake_at(near)
    step = (shard_id - shard_of(base, shard_count)) % shard_count
    return base + (step << 22)


def snowflake_time(snowflake: int) -> float:
    """Unix time encoded in a snowflake (the inverse of :func:`snowflake_at`)."""
    return ((snowflake >> 22) + discord.utils.DISCORD_EPOCH) / 1000


def iso(timestamp: float) -> str:
    """ISO-8601 with offset, the format of Discord's ``timestamp`` fields."""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat()


def new_id() -> int:
    """Default id factory for dataclasses built before a simulator (and its clock) exists."""
    return snowflake_at(time.time())


class ApiError(Exception):
    """A Discord error reply; REST handlers raise it and the dispatcher renders it as JSON."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> JSON:
        """The JSON Discord sends; discord.py reads ``code``, ``message`` and ``errors``."""
        out: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def invalid_form(path: list[str | int], error_code: str, message: str) -> ApiError:
    """400/50035 with Discord's nested ``errors`` tree, so discord.py prints the field path."""
    node: JSON = {"_errors": [{"code": error_code, "message": message}]}
    for key in reversed(path):
        node = {str(key): node}
    return ApiError(400, 50035, "Invalid Form Body", errors=node)


@dataclass
class SimUser:
    """A Discord user; the bot itself is one with ``bot=True``."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class SimRole:
    """A guild role; the @everyone role is derived from the guild and not listed here."""

    name: str
    permissions: int = 0
    id: int = field(default_factory=new_id)
    position: int = 1

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class SimChannel:
    """A guild text channel (type 0) or a DM channel (type 1, ``recipient_id`` set)."""

    name: str = "general"
    id: int = field(default_factory=new_id)
    type: int = 0
    position: int = 0
    topic: str | None = None
    nsfw: bool = False
    permission_overwrites: list[JSON] = field(default_factory=list)
    parent_id: int | None = None
    guild_id: int | None = None
    recipient_id: int | None = None
    #: Permission bits the bot lacks here (a channel overwrite denying them to its role).
    bot_denied: int = 0
    #: A thread's creator (threads: type 11 public, started from a message: same id).
    owner_id: int | None = None

    def bot_lacks(self, **perms: bool) -> bool:
        """Whether any of these permissions (``read_message_history=True``...) is denied."""
        return bool(self.bot_denied & discord.Permissions(**perms).value)

    @property
    def is_thread(self) -> bool:
        return self.type in (10, 11, 12)

    def payload(self, recipient: SimUser | None = None) -> JSON:
        if self.is_thread:
            return {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild_id) if self.guild_id else None,
                "parent_id": str(self.parent_id) if self.parent_id else None,
                "owner_id": str(self.owner_id) if self.owner_id else None,
                "name": self.name,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "message_count": 0,
                "member_count": 1,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": "2026-01-01T00:00:00+00:00",
                    "locked": False,
                },
            }
        if self.type == 1:
            return {
                "id": str(self.id),
                "type": 1,
                "last_message_id": None,
                "recipients": [recipient.payload()] if recipient else [],
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id) if self.guild_id else None,
            "name": self.name,
            "position": self.position,
            "topic": self.topic,
            "nsfw": self.nsfw,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": self.permission_overwrites,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }


@dataclass
class SimMember:
    """Guild membership of a user; ``flags`` is required by discord.py (member.py L331)."""

    user_id: int
    roles: list[int] = field(default_factory=list)
    joined_at: float = field(default_factory=time.time)
    nick: str | None = None

    def payload(self, user: SimUser, *, permissions: int | None = None) -> JSON:
        out: JSON = {
            "user": user.payload(),
            "roles": [str(r) for r in self.roles],
            "joined_at": iso(self.joined_at),
            "nick": self.nick,
            "avatar": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            out["permissions"] = str(permissions)
        return out


def _default_channels() -> list[SimChannel]:
    return [SimChannel()]


@dataclass
class SimGuild:
    """A server. Default: one text channel, boost tier 0, @everyone with typical permissions.

    ``upload_limit`` overrides the simulator-wide limit for channel uploads in this guild
    (Discord raises it with boosts: tier 2 is 50 MiB, tier 3 100 MiB).
    """

    name: str = "Sim Guild"
    id: int = field(default_factory=new_id)
    channels: list[SimChannel] = field(default_factory=_default_channels)
    roles: list[SimRole] = field(default_factory=list)
    everyone_permissions: int = EVERYONE_PERMISSIONS
    premium_tier: int = 0
    owner_id: int | None = None
    features: list[str] = field(default_factory=list)
    preferred_locale: str = "en-US"
    #: The channel Discord posts joins and boosts in, which every member reads (None: unset).
    system_channel_id: int | None = None
    upload_limit: int | None = None
    members: dict[int, SimMember] = field(default_factory=dict)
    #: The bot's own role (``BOT_PERMISSIONS``), added by the simulator; kept apart from
    #: ``roles`` so a test's roles are exactly the ones it listed.
    bot_role: SimRole | None = None

    def __post_init__(self) -> None:
        for channel in self.channels:
            channel.guild_id = self.id

    def everyone_role(self) -> SimRole:
        """@everyone has the guild's id, as on Discord (discord.py relies on that)."""
        return SimRole(
            name="@everyone", permissions=self.everyone_permissions, id=self.id, position=0
        )

    def all_roles(self) -> list[SimRole]:
        """The test's roles and the bot's own (not @everyone)."""
        return [*self.roles, *([self.bot_role] if self.bot_role is not None else [])]

    def role_payloads(self) -> list[JSON]:
        return [self.everyone_role().payload(), *(r.payload() for r in self.all_roles())]

    def member_permissions(self, member: SimMember) -> int:
        """Guild-level permissions: @everyone OR the member's roles (no channel overwrites)."""
        perms = self.everyone_permissions
        for role in self.all_roles():
            if role.id in member.roles:
                perms |= role.permissions
        return perms

    def permissions_in(self, channel: SimChannel, member: SimMember) -> int:
        """What Discord computes for ``member`` in ``channel`` (the interaction's
        ``permissions``, or ``app_permissions`` for the bot): the owner and Administrator
        have everything; else the guild-level permissions, then the channel's overwrites
        for @everyone, for the member's roles (denies, then allows) and for the member."""
        if member.user_id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.member_permissions(member)
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        overwrites = {int(o["id"]): o for o in channel.permission_overwrites}
        everyone = overwrites.get(self.id)
        if everyone is not None:
            perms = (perms & ~int(everyone.get("deny", 0))) | int(everyone.get("allow", 0))
        deny = allow = 0
        for role_id in member.roles:
            found = overwrites.get(role_id)
            if found is not None and int(found.get("type", 0)) == 0:
                deny |= int(found.get("deny", 0))
                allow |= int(found.get("allow", 0))
        perms = (perms & ~deny) | allow
        own = overwrites.get(member.user_id)
        if own is not None and int(own.get("type", 0)) == 1:
            perms = (perms & ~int(own.get("deny", 0))) | int(own.get("allow", 0))
        return perms

    def payload(self, users: dict[int, SimUser], *, gateway: bool) -> JSON:
        """REST guild object, or the full GUILD_CREATE shape when ``gateway`` is true."""
        out: JSON = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id) if self.owner_id else None,
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.preferred_locale,
            "features": list(self.features),
            "roles": self.role_payloads(),
            "emojis": [],
            "stickers": [],
            "system_channel_id": (
                str(self.system_channel_id) if self.system_channel_id is not None else None
            ),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "widget_enabled": False,
        }
        if gateway:
            out.update(
                unavailable=False,
                large=False,
                member_count=len(self.members),
                joined_at=iso(min((m.joined_at for m in self.members.values()), default=0.0)),
                channels=[c.payload() for c in self.channels],
                members=[
                    m.payload(users[m.user_id])
                    for m in self.members.values()
                    if users[m.user_id].bot
                ],
                voice_states=[],
                presences=[],
                threads=[],
                stage_instances=[],
                guild_scheduled_events=[],
                soundboard_sounds=[],
            )
        return out


@dataclass
class SimAttachment:
    """An upload the *user* makes with a slash command (an attachment option).

    ``content_type``, ``width``, ``height`` and ``size`` are what Discord *declares* in the
    payload; they may deliberately disagree with ``data`` to test the bot's own sniffing.
    ``extra`` zero bytes are streamed by the CDN after ``data``, made as they are sent (a
    file far larger than declared, without holding it in memory).
    """

    data: bytes
    filename: str
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    extra: int = 0


@dataclass
class StoredAttachment:
    """A file attached to a stored message, with its bytes and the CDN URL that serves them."""

    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    description: str | None = None

    def payload(self, *, ephemeral: bool = False) -> JSON:
        out: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "description": self.description,
        }
        if ephemeral:
            out["ephemeral"] = True
        return out


@dataclass
class RecordedPart:
    """One multipart form part as received (``payload_json`` or ``files[n]``)."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


AuthKind = Literal["bot", "invalid", "none"]


@dataclass
class RecordedCall:
    """One HTTP request the simulator answered, including rejections.

    ``path`` is relative to the API base (``/channels/1/messages``); CDN and unknown non-API
    requests keep their full path (``/cdn/...``). ``route`` is the matched template such as
    ``POST /channels/{channel_id}/messages`` (None for unknown routes). ``json`` is the JSON
    body or, for multipart requests, the parsed ``payload_json``. ``interaction_id`` links
    callback and interaction-webhook calls to their :class:`SimInteraction`.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    parts: list[RecordedPart]
    headers: dict[str, str]
    auth: AuthKind
    time: float
    route: str | None = None
    status: int = 0
    code: int | None = None
    response: Any = None
    interaction_id: int | None = None
    #: The answer's headers (the rate-limit ones among them).
    response_headers: dict[str, str] = field(default_factory=dict)
    #: The client's end of the TCP connection it came on: one per connection.
    peer: tuple[str, int] | None = None

    @property
    def files(self) -> list[RecordedPart]:
        """The file parts only (``files[n]``), in the order they were sent."""
        return [p for p in self.parts if p.filename is not None]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class GatewayFrame:
    """One gateway frame, in either direction, for tests that check the websocket exchange."""

    direction: Literal["sent", "received"]
    op: int
    t: str | None
    s: int | None
    d: Any
    time: float
