"""The channels each server configured (``doctor`` checks the bot's permissions there).

Read only: the rows belong to ``storage.moderation`` (allowed channels, the log
channel) and ``storage.guilds`` (the budget notice channel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.engine import Engine

SELECT_MODERATION_CHANNELS = (
    "SELECT guild_id, allowed_channel_ids, log_channel_id FROM moderation_settings "
    "ORDER BY guild_id"
)
SELECT_NOTICE_CHANNELS = (
    "SELECT guild_id, notice_channel_id FROM guild_settings "
    "WHERE notice_channel_id IS NOT NULL ORDER BY guild_id"
)


@dataclass(frozen=True)
class ConfiguredChannel:
    guild_id: int
    channel_id: int
    use: str  # "allowed" (jobs are made there), "log" or "notice"


async def configured_channels(db: Engine) -> list[ConfiguredChannel]:
    """Every channel a server chose, once per use, in server order."""
    found: list[ConfiguredChannel] = []
    for row in await db.fetch_all(SELECT_MODERATION_CHANNELS):
        guild = int(row["guild_id"])
        for channel in sorted(int(c) for c in json.loads(row["allowed_channel_ids"])):
            found.append(ConfiguredChannel(guild, channel, "allowed"))
        if row["log_channel_id"] is not None:
            found.append(ConfiguredChannel(guild, int(row["log_channel_id"]), "log"))
    for row in await db.fetch_all(SELECT_NOTICE_CHANNELS):
        found.append(
            ConfiguredChannel(int(row["guild_id"]), int(row["notice_channel_id"]), "notice")
        )
    return found
