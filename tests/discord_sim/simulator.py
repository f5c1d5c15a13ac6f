"""The loopback Discord: one aiohttp server on 127.0.0.1 with REST, gateway and CDN.

A real discord.py client (in-process or in a subprocess) talks to it over TCP once
``discord.http.Route.BASE = sim.api_base`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sim.gateway_url)`` are set.
Tests drive users (slash commands, buttons, modals) through the public methods and assert on
the recorded calls, messages and interactions. Time-based rules read the injected ``clock`` so
tests can jump past the 3-second and 15-minute deadlines without sleeping.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import discord
from aiohttp import web

from .interaction_routes import InteractionRoutes
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    COMPONENT,
    MODAL_SUBMIT,
    InteractionContext,
    SimInteraction,
    interaction_payload,
    nest_options,
    option_payload,
    resolved_attachment,
)
from .message_routes import MessageRoutes
from .messages import SimMessage
from .models import (
    JSON,
    RecordedCall,
    SimAttachment,
    SimGuild,
    SimMember,
    snowflake_at,
)
from .ratelimits import Limit, RateLimiter, default_limits
from .rest import Fault, RestServer, Router, fault_reply
from .routes import InfoRoutes
from .state import SimState

T = TypeVar("T")
MIB = 1024 * 1024


class DiscordSimulator(SimState):
    """A loopback Discord for end-to-end tests of a real discord.py bot.

    Everything the bot does is recorded (``calls``, ``interactions``, ``command_syncs``,
    ``channel_messages()``), and Discord's server-side rules that discord.py never checks are
    enforced: the 3 s callback deadline, the 15 min webhook token, double acknowledgement,
    per-file upload limits, ephemeral messages being invisible to the bot token, the
    ``enforce_nonce`` dedup, component limits and the bot token itself.
    """

    def __init__(
        self,
        *,
        token: str = "sim-token",
        application_id: int | None = None,
        clock: Callable[[], float] = time.time,
        guilds: list[SimGuild] | None = None,
        upload_limit: int = 10 * MIB,
        attachment_size_limit: int = 10 * MIB,
        heartbeat_interval_ms: int = 41250,
        nonce_window: float = 300.0,
        rate_limits: dict[str, Limit] | None = None,
        global_limit: Limit | None = None,
        shard_count: int = 1,
    ) -> None:
        """``rate_limits`` maps route templates (``ratelimits.MESSAGE_CREATE``...) to their
        limits; by default 5 message creates and 5 edits per 5 s per channel.
        ``shard_count`` is what ``GET /gateway/bot`` recommends (sessions IDENTIFY with
        ``[shard_id, shard_count]`` and get only their shard's guilds)."""
        super().__init__(
            token=token,
            application_id=application_id,
            clock=clock,
            guilds=guilds,
            upload_limit=upload_limit,
            attachment_size_limit=attachment_size_limit,
            heartbeat_interval_ms=heartbeat_interval_ms,
            nonce_window=nonce_window,
            shard_count=shard_count,
        )
        self.rate_limiter = RateLimiter(
            clock,
            rate_limits if rate_limits is not None else default_limits(),
            global_limit=global_limit,
        )
        self._rest = RestServer(self, self._build_router(), self.rate_limiter)
        self._runner: web.AppRunner | None = None

    def _build_router(self) -> Router:
        router = Router()
        for routes in (InfoRoutes(self), MessageRoutes(self), InteractionRoutes(self)):
            routes.register(router)
        return router

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1 (a real socket, usable from a subprocess)."""
        app = web.Application(client_max_size=1024 * MIB)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest.handle_api)
        app.router.add_get("/cdn/{tail:.*}", self._rest.handle_cdn)
        app.router.add_get("/", self._gateway.handle)
        app.router.add_route("*", "/{tail:.*}", self._rest.handle_other)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Close gateway sockets (1001 going away), then the server. Close the bot first."""
        if self._runner is None:
            return
        await self._gateway.close_all(1001)
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 10.0,
    ) -> T:
        """Return ``predicate()``'s first truthy value, re-checked after every recorded event.

        No polling: the predicate runs once now and again whenever a REST call, gateway frame
        or connection change is recorded. Falsy results (None, False, empty list) mean "not
        yet". For bot-side state, await the bot's own primitives (e.g. ``wait_until_ready``).
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value
        except TimeoutError:
            recent = [f"{c.method} {c.path} -> {c.status}" for c in self.calls[-5:]]
            raise TimeoutError(
                f"wait_for timed out after {timeout}s; last calls: {recent}"
            ) from None

    # -- rate limits ------------------------------------------------------------------------

    def too_many_requests(self) -> list[RecordedCall]:
        """Every 429 the simulator answered: its own rate limits and injected ones alike."""
        return [c for c in self.calls if c.status == 429]

    @property
    def rate_limit_hits(self) -> int:
        """429s the simulator's rate limits answered (requests over a bucket or the global)."""
        return self.rate_limiter.hits + self.rate_limiter.global_hits

    def invalid_requests(self) -> int:
        """401, 403 and 429 answers: Discord bans an IP after 10,000 in 10 minutes."""
        return sum(
            1
            for c in self.calls
            if c.status in (401, 403, 429)
            and c.response_headers.get("X-RateLimit-Scope") != "shared"
        )

    # -- test controls ----------------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        body: JSON | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fail the next ``times`` requests whose path matches (``method="*"``: any method).

        The regex is searched in the API-relative path (``/channels/1/messages``) or, for the
        CDN, the full ``/cdn/...`` path. A 429 gets ``Via`` and ``retry_after`` by default so
        discord.py retries it rather than taking it for a Cloudflare ban. Faults apply after
        the token check and before the route's own rules.
        """
        reply = fault_reply(status, body, headers)
        self._rest.faults.append(Fault(method.upper(), re.compile(path_regex), reply, times))

    def add_cdn_file(self, filename: str, data: bytes, content_type: str | None) -> str:
        """Serve ``data`` from the simulator's CDN; returns a signed-looking attachment URL."""
        return self._cdn_put(
            snowflake_at(self.clock()), snowflake_at(self.clock()), filename, data, content_type
        )

    def deny_bot(self, channel_id: int, **perms: bool) -> None:
        """Deny the bot permissions in one channel (``read_message_history=True``...), as a
        channel overwrite on its role would: its posts and reads there get Discord's 403s."""
        self.require_channel(channel_id).bot_denied |= discord.Permissions(**perms).value

    async def delete_channel(self, channel_id: int) -> None:
        """An admin deletes a channel: gone from its server (10003 from now on), and the
        gateway says CHANNEL_DELETE."""
        channel = self.require_channel(channel_id)
        guild = self.guild_for_channel(channel_id)
        if guild is not None:
            guild.channels.remove(channel)
        await self._gateway.dispatch("CHANNEL_DELETE", channel.payload())

    def close_dms(self, user_id: int) -> None:
        """The member takes no direct message from the bot (their privacy setting)."""
        self.closed_dms.add(user_id)

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send any gateway dispatch to the sessions of its guild's shard (every session of
        an unsharded bot); returns how many sessions got it."""
        return await self._gateway.dispatch(event, data)

    def shard_sessions(self) -> dict[int, int]:
        """Shard id -> how many valid sessions identified on it (unsharded ones count as 0)."""
        counts: dict[int, int] = {}
        for session in self._gateway.valid_sessions:
            shard_id = session.shard[0] if session.shard is not None else 0
            counts[shard_id] = counts.get(shard_id, 0) + 1
        return counts

    def guild_sessions(self, guild_id: int) -> int:
        """How many valid gateway sessions carry ``guild_id``'s events (its shard's)."""
        return len(self._gateway.sessions_for(guild_id))

    async def reconnect_gateway(self) -> None:
        """Op 7 RECONNECT to every connection: the client should come back with RESUME."""
        await self._gateway.reconnect_all()

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway socket with ``code`` (4000 is resumable, 4004 is fatal)."""
        await self._gateway.close_all(code)

    # -- users acting -----------------------------------------------------------------------

    async def send_slash(
        self,
        path: list[str],
        options: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        attachments: dict[str, SimAttachment] | None = None,
        locale: str = "en-US",
        age_seconds: float = 0.0,
        member_roles: list[int] | None = None,
        permissions: int | None = None,
        attachment_size_limit: int | None = None,
        command_guild_id: int | None = None,
        app_permissions: int | None = None,
        focused: str | None = None,
    ) -> SimInteraction:
        """Dispatch a chat-input command (INTERACTION_CREATE type 2) over the gateway.

        ``focused``: the option being typed, as Discord sends while the member types it
        (an APPLICATION_COMMAND_AUTOCOMPLETE interaction, type 4; the answer is type 8).

        ``path`` is ``[command]``, ``[command, sub]`` or ``[command, group, sub]``. Attachment
        options are served by the CDN and described in ``data.resolved.attachments``; a channel
        option (``{"type": 7, "value": id}``) naming a channel of the guild is described in
        ``data.resolved.channels``, as Discord does.
        ``age_seconds`` back-dates the interaction's snowflake (the 15-minute token clock)
        while the 3-second callback clock still starts now. ``command_guild_id`` marks the
        command as guild-registered; by default it is set if a guild sync registered the name.
        ``permissions`` and ``app_permissions`` default to what Discord computes in the
        channel (roles and overwrites) for the member and for the bot.
        """
        ctx = self._context(
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            locale=locale,
            member_roles=member_roles,
            permissions=permissions,
            attachment_size_limit=attachment_size_limit,
            app_permissions=app_permissions,
        )
        leaf = [option_payload(name, value) for name, value in (options or {}).items()]
        for option in leaf:
            if option["name"] == focused:
                option["focused"] = True
        resolved: JSON = {}
        for name, att in (attachments or {}).items():
            attachment_id = snowflake_at(self.clock())
            url = self._cdn_put(
                ctx.channel.id, attachment_id, att.filename, att.data, att.content_type, att.extra
            )
            leaf.append({"name": name, "type": 11, "value": str(attachment_id)})
            resolved[str(attachment_id)] = resolved_attachment(attachment_id, att, url)
        scope = command_guild_id or self._command_scope(ctx.guild.id, path[0])
        data: JSON = {
            "id": str(self.command_id(scope, path[0], 1)),
            "name": path[0],
            "type": 1,
            "options": nest_options(path, leaf),
        }
        channels: JSON = {
            str(c.id): {**c.payload(), "permissions": str(ctx.permissions)}
            for option in leaf
            if option.get("type") == 7
            for c in ctx.guild.channels
            if str(c.id) == str(option.get("value"))
        }
        if resolved or channels:
            data["resolved"] = {
                key: value
                for key, value in (("attachments", resolved), ("channels", channels))
                if value
            }
        if scope is not None:
            data["guild_id"] = str(scope)
        kind = APPLICATION_COMMAND if focused is None else AUTOCOMPLETE
        return await self._dispatch_interaction(kind, ctx, data, age_seconds)

    async def send_component(
        self,
        custom_id: str,
        *,
        message_id: int,
        channel_id: int | None = None,
        user_id: int | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
        locale: str = "en-US",
        age_seconds: float = 0.0,
        member_roles: list[int] | None = None,
        permissions: int | None = None,
        app_permissions: int | None = None,
    ) -> SimInteraction:
        """A button press (or select, with ``component_type``/``values``) on a stored message."""
        message = self.messages.get(message_id)
        if message is None:
            raise ValueError(f"no stored message {message_id}")
        guild = self.guild_for_channel(channel_id or message.channel_id)
        ctx = self._context(
            user_id=user_id,
            guild_id=guild.id if guild else None,
            channel_id=channel_id or message.channel_id,
            locale=locale,
            member_roles=member_roles,
            permissions=permissions,
            app_permissions=app_permissions,
        )
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        return await self._dispatch_interaction(COMPONENT, ctx, data, age_seconds, message=message)

    async def send_modal_submit(
        self,
        custom_id: str,
        values: dict[str, str],
        *,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        locale: str = "en-US",
        age_seconds: float = 0.0,
        member_roles: list[int] | None = None,
        permissions: int | None = None,
    ) -> SimInteraction:
        """A modal submit (type 5): one action row per text input, keyed by its custom_id."""
        ctx = self._context(
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            locale=locale,
            member_roles=member_roles,
            permissions=permissions,
        )
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        message = self.messages.get(message_id) if message_id is not None else None
        data: JSON = {"custom_id": custom_id, "components": rows}
        return await self._dispatch_interaction(
            MODAL_SUBMIT, ctx, data, age_seconds, message=message
        )

    async def redeliver(self, inter: SimInteraction) -> None:
        """Dispatch the same INTERACTION_CREATE again (a duplicate delivery, e.g. two bot
        processes on one token): whichever answers second gets 40060."""
        await self._gateway.dispatch("INTERACTION_CREATE", inter.payload)

    async def post_user_message(
        self,
        channel_id: int,
        content: str,
        *,
        user_id: int | None = None,
        nonce: str | None = None,
    ) -> SimMessage:
        """A user writes in a channel: stored and dispatched as MESSAGE_CREATE.

        ``nonce`` is remembered for ``enforce_nonce`` as a post through the API would be
        (a post of the bot's made before a crash, say).
        """
        channel = self.require_channel(channel_id)
        user = self.ensure_user(user_id or self.default_user.id)
        body: JSON = {"content": content} if nonce is None else {"content": content, "nonce": nonce}
        message = self.new_message(channel, body, [], author_id=user.id)
        if nonce is not None:
            self.nonces[(channel.id, user.id, nonce)] = message
        await self.publish(message, "MESSAGE_CREATE")
        return message

    def _context(
        self,
        *,
        user_id: int | None,
        guild_id: int | None,
        channel_id: int | None,
        locale: str,
        member_roles: list[int] | None = None,
        permissions: int | None = None,
        attachment_size_limit: int | None = None,
        app_permissions: int | None = None,
    ) -> InteractionContext:
        """Resolve who acts where; unknown users are created and joined to the guild."""
        guild = self.require_guild(guild_id) if guild_id else self.guilds[0]
        channel = next((c for c in guild.channels if c.id == channel_id), None) or guild.channels[0]
        if channel_id is not None and channel.id != channel_id:
            raise ValueError(f"channel {channel_id} is not in guild {guild.id}")
        user = self.ensure_user(user_id or self.default_user.id)
        member = guild.members.setdefault(user.id, SimMember(user.id, joined_at=self.clock()))
        if member_roles is not None:
            member.roles = list(member_roles)
        return InteractionContext(
            guild=guild,
            channel=channel,
            user=user,
            member=member,
            permissions=permissions
            if permissions is not None
            else guild.permissions_in(channel, member),
            app_permissions=app_permissions
            if app_permissions is not None
            else self.app_permissions(guild, channel),
            locale=locale,
            attachment_size_limit=attachment_size_limit or self.attachment_size_limit,
        )

    async def _dispatch_interaction(
        self,
        kind: int,
        ctx: InteractionContext,
        data: JSON,
        age_seconds: float,
        *,
        message: SimMessage | None = None,
    ) -> SimInteraction:
        if not self._gateway.sessions_for(ctx.guild.id):
            raise RuntimeError(
                f"no gateway session carries guild {ctx.guild.id}: start the bot (on its shard) "
                "and wait until it is ready"
            )
        now = self.clock()
        interaction_id = snowflake_at(now - age_seconds)
        token = f"sim-itoken-{secrets.token_urlsafe(24)}"
        payload = interaction_payload(
            interaction_id=interaction_id,
            token=token,
            kind=kind,
            app_id=self.application_id,
            ctx=ctx,
            data=data,
        )
        if message is not None:
            payload["message"] = self.message_payload(message)
        inter = SimInteraction(
            id=interaction_id,
            token=token,
            type=kind,
            application_id=self.application_id,
            guild_id=ctx.guild.id,
            channel_id=ctx.channel.id,
            user_id=ctx.user.id,
            payload=payload,
            dispatched_at=now,
            attachment_size_limit=ctx.attachment_size_limit,
            original_message=message,
        )
        self.interactions[interaction_id] = inter
        self._tokens[token] = inter
        await self._gateway.dispatch("INTERACTION_CREATE", payload)
        return inter
