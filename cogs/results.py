"""Where results go, in Discord: the server's place (``/hailuo-admin results``), the
member's way of being told (``/hailuo settings``), and the thread started from a job's
card when the server wants a thread per job.

The thread needs the bot's Create Public Threads and Send Messages in Threads; both are
checked from the interaction's ``app_permissions`` before anything is charged
(``check_thread_access``), like the channel's own permissions in ``cogs/access.py``.
A thread that cannot be made after all (a race with an admin's change) is logged and the
result goes to the channel, as it would without the setting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from hailuo.i18n.messages import render
from hailuo.jobs import access
from hailuo.model.errors import UserInputError
from hailuo.model.job import Job

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)

Place = Literal["channel", "thread"]
Notify = Literal["mention", "dm", "quiet"]
#: A thread's name is at most 100 characters.
THREAD_NAME_LIMIT = 100


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id


async def check_thread_access(bot: HailuoBot, interaction: discord.Interaction) -> None:
    """With a thread per job, refuse before charging a channel where the bot cannot start one."""
    if interaction.guild_id is None:
        return
    if await bot.desk.results_in(interaction.guild_id) != "thread":
        return
    try:
        access.check_threads(access.granted_names(interaction.app_permissions.value))
    except UserInputError:
        # Refused on the place this process knows: only if the stored one says so too.
        if await bot.desk.results_in(interaction.guild_id, fresh=True) == "thread":
            raise


async def start_thread(bot: HailuoBot, job: Job, card_id: int | None) -> None:
    """Start the job's thread from its card, when the server wants one (best effort)."""
    if card_id is None or job.thread_id is not None:
        return
    if await bot.desk.results_in(job.guild_id) != "thread":
        return
    name = render("results.thread_name", job.locale, job_id=job.id)[:THREAD_NAME_LIMIT]
    message = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
    try:
        thread = await message.get_partial_message(card_id).create_thread(name=name)
    except discord.HTTPException as exc:
        log.warning("no thread for job=%d: %s %s", job.id, exc.status, exc.code)
        return
    await bot.desk.set_thread(job.id, thread.id)


async def results_line(bot: HailuoBot, interaction: discord.Interaction) -> str:
    """The policy's line (with its newline) on where results go and how the asking member
    is told."""
    guild_id, locale = _guild_id(interaction), str(interaction.locale)
    place = await bot.desk.results_in(guild_id)
    notify = await bot.desk.notify_mode(guild_id, interaction.user.id)
    return "\n" + render(
        "results.policy",
        locale,
        place=render(f"results.place.{place}", locale),
        notify=render(f"results.notify.{notify}", locale),
    )


class ResultsAdminCommands(commands.Cog):
    """``/hailuo-admin results``; mixed into the admin group."""

    bot: HailuoBot

    @app_commands.command(name="results", description="Post results in the channel or a thread")
    @app_commands.describe(place="In the channel (default) or in a thread per job")
    async def results(self, interaction: discord.Interaction, place: Place) -> None:
        guild_id = _guild_id(interaction)
        await self.bot.desk.set_results_in(guild_id, place, actor_id=interaction.user.id)
        locale = str(interaction.locale)
        text = render("results.set", locale, place=render(f"results.place.{place}", locale))
        await interaction.response.send_message(text, ephemeral=True)


class MemberSettingsCommands(commands.Cog):
    """``/hailuo settings``; mixed into the member's group."""

    bot: HailuoBot

    @app_commands.command(name="settings", description="How you are told that a video is ready")
    @app_commands.describe(notify="Mention me (default), DM me, or quiet")
    async def settings(
        self, interaction: discord.Interaction, notify: Notify | None = None
    ) -> None:
        guild_id = _guild_id(interaction)
        locale = str(interaction.locale)
        if notify is not None:
            await self.bot.desk.set_notify(guild_id, interaction.user.id, notify)
        mode = await self.bot.desk.notify_mode(guild_id, interaction.user.id)
        text = render("results.notify_now", locale, notify=render(f"results.notify.{mode}", locale))
        await interaction.response.send_message(text, ephemeral=True)
