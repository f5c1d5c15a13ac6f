"""Read-mostly REST routes: login, gateway discovery, command sync, guilds, channels, users."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import JSON, ApiError, SimChannel, snowflake_at
from .rest import ApiRequest, Reply, Router

if TYPE_CHECKING:
    from .state import SimState


class InfoRoutes:
    """Everything except messages and interactions."""

    def __init__(self, sim: SimState) -> None:
        self.sim = sim

    def register(self, router: Router) -> None:
        add = router.add
        add("GET", "/users/@me", self.get_me)
        add("GET", "/users/{user_id}", self.get_user)
        add("POST", "/users/@me/channels", self.open_dm)
        add("GET", "/oauth2/applications/@me", self.get_application)
        add("GET", "/gateway", self.get_gateway, bot_auth=False)
        add("GET", "/gateway/bot", self.get_gateway_bot)
        for prefix in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
            add("PUT", f"{prefix}/commands", self.put_commands)
            add("GET", f"{prefix}/commands", self.get_commands)
        add("GET", "/guilds/{guild_id}", self.get_guild)
        add("GET", "/guilds/{guild_id}/channels", self.get_guild_channels)
        add("GET", "/guilds/{guild_id}/roles", self.get_guild_roles)
        add("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member)
        add("GET", "/channels/{channel_id}", self.get_channel)
        add("POST", "/channels/{channel_id}/typing", self.typing)

    async def get_me(self, req: ApiRequest) -> Reply:
        """Login (``static_login``); a 401 here becomes ``discord.LoginFailure``."""
        me = self.sim.bot_user.payload()
        me.update(verified=True, mfa_enabled=False, flags=0, locale="en-US")
        return Reply(body=me)

    async def get_user(self, req: ApiRequest) -> Reply:
        user = self.sim.users.get(req.snowflake("user_id"))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return Reply(body=user.payload())

    async def open_dm(self, req: ApiRequest) -> Reply:
        """``User.send`` first opens (or reuses) a DM channel."""
        user = self.sim.users.get(int(req.body().get("recipient_id") or 0))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        channel = self.sim.dm_channel(user.id)
        return Reply(body=channel.payload(user))

    async def get_application(self, req: ApiRequest) -> Reply:
        """``application_info()`` at login; these are the keys appinfo.py requires."""
        return Reply(
            body={
                "id": str(self.sim.application_id),
                "name": self.sim.bot_user.username,
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.sim.owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": self.sim.bot_user.payload(),
                "redirect_uris": [],
                "approximate_guild_count": len(self.sim.guilds),
            }
        )

    async def get_gateway(self, req: ApiRequest) -> Reply:
        return Reply(body={"url": self.sim.gateway_url})

    async def get_gateway_bot(self, req: ApiRequest) -> Reply:
        """Only ``AutoShardedClient`` asks; it needs ``url``, ``shards`` and the start limit."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
        return Reply(
            body={
                "url": self.sim.gateway_url,
                "shards": self.sim.shard_count,
                "session_start_limit": limit,
            }
        )

    def _command_scope(self, req: ApiRequest) -> int | None:
        if req.snowflake("app_id") != self.sim.application_id:
            raise ApiError(
                403, 20012, "You are not authorized to perform this action on this application"
            )
        if "guild_id" not in req.params:
            return None
        return self.sim.require_guild(req.snowflake("guild_id")).id

    async def put_commands(self, req: ApiRequest) -> Reply:
        """Bulk overwrite (``tree.sync``): ids stay stable per name and type, like Discord's."""
        scope = self._command_scope(req)
        body = req.json if isinstance(req.json, list) else []
        stored = [self._stored_command(scope, cmd) for cmd in body]
        self.sim.commands[scope] = stored
        return Reply(body=stored)

    def _stored_command(self, scope: int | None, cmd: JSON) -> JSON:
        out: JSON = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **cmd,
        }
        out["id"] = str(self.sim.command_id(scope, str(cmd.get("name")), int(out["type"])))
        out["application_id"] = str(self.sim.application_id)
        out["version"] = str(snowflake_at(self.sim.clock()))
        if scope is not None:
            out["guild_id"] = str(scope)
        return out

    async def get_commands(self, req: ApiRequest) -> Reply:
        return Reply(body=self.sim.commands.get(self._command_scope(req), []))

    async def get_guild(self, req: ApiRequest) -> Reply:
        guild = self.sim.require_guild(req.snowflake("guild_id"))
        body = guild.payload(self.sim.users, gateway=False)
        if req.query.get("with_counts") in ("true", "1", "True"):
            body.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
        return Reply(body=body)

    async def get_guild_channels(self, req: ApiRequest) -> Reply:
        guild = self.sim.require_guild(req.snowflake("guild_id"))
        return Reply(body=[c.payload() for c in guild.channels])

    async def get_guild_roles(self, req: ApiRequest) -> Reply:
        guild = self.sim.require_guild(req.snowflake("guild_id"))
        return Reply(body=guild.role_payloads())

    async def get_member(self, req: ApiRequest) -> Reply:
        guild = self.sim.require_guild(req.snowflake("guild_id"))
        member = guild.members.get(req.snowflake("user_id"))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return Reply(body=member.payload(self.sim.users[member.user_id]))

    async def get_channel(self, req: ApiRequest) -> Reply:
        channel = self.sim.require_channel(req.snowflake("channel_id"))
        return Reply(body=self._channel_payload(channel))

    def _channel_payload(self, channel: SimChannel) -> JSON:
        recipient = self.sim.users.get(channel.recipient_id or 0)
        return channel.payload(recipient)

    async def typing(self, req: ApiRequest) -> Reply:
        self.sim.require_channel(req.snowflake("channel_id"))
        return Reply(status=204)
