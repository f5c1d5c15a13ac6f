"""Permissions as Discord reports them: the presser's in a job's channel, the bot's here.

A moderator's Manage Messages counts in the job's own channel, not merely where they
typed (``permissions_in``); the bot's own ``app_permissions`` decide, before anything is
reserved, whether a job may live in the channel of the command (``check_channel_access``).
"""

from __future__ import annotations

import discord

from hailuo.jobs import access


def permissions_in(interaction: discord.Interaction, channel_id: int | None) -> discord.Permissions:
    """The presser's permissions in ``channel_id``: Discord's own figure where they pressed,
    else computed from the cached server (roles and the channel's overwrites); none if the
    channel or the member is unknown, so a doubt never grants anything."""
    if channel_id is None or channel_id == interaction.channel_id:
        return interaction.permissions
    guild, member = interaction.guild, interaction.user
    channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
    if channel is None or not isinstance(member, discord.Member):
        return discord.Permissions.none()
    return channel.permissions_for(member)


def check_channel_access(interaction: discord.Interaction) -> None:
    """Refuse, before anything is reserved, a channel where the bot cannot do a job's
    work (``hailuo.jobs.access``), from Discord's own ``app_permissions`` for this channel."""
    access.check_channel(access.granted_names(interaction.app_permissions.value))
