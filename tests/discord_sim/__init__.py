"""Loopback Discord simulator for end-to-end tests of the real discord.py client.

Import from here: ``from tests.discord_sim import DiscordSimulator, SimAttachment, SimGuild``.
The package layout: ``models`` (ids, users, guilds, recorded calls), ``messages`` (stored
messages and body rules), ``interactions`` (SimInteraction and payloads), ``rest`` (HTTP
plumbing), ``routes``/``message_routes``/``interaction_routes`` (endpoints), ``gateway``
(websocket), ``state`` (the world the routes change) and ``simulator`` (the public facade).
"""

from .interactions import SimInteraction
from .messages import MessageEdit, SimMessage
from .models import (
    BOT_PERMISSIONS,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    GatewayFrame,
    RecordedCall,
    RecordedPart,
    SimAttachment,
    SimChannel,
    SimGuild,
    SimMember,
    SimRole,
    SimUser,
    StoredAttachment,
    guild_id_on_shard,
    shard_of,
    snowflake_at,
    snowflake_time,
)
from .simulator import DiscordSimulator

__all__ = [
    "BOT_PERMISSIONS",
    "EPHEMERAL",
    "EVERYONE_PERMISSIONS",
    "DiscordSimulator",
    "GatewayFrame",
    "MessageEdit",
    "RecordedCall",
    "RecordedPart",
    "SimAttachment",
    "SimChannel",
    "SimGuild",
    "SimInteraction",
    "SimMember",
    "SimMessage",
    "SimRole",
    "SimUser",
    "StoredAttachment",
    "guild_id_on_shard",
    "shard_of",
    "snowflake_at",
    "snowflake_time",
]
