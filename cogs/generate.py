"""``/hailuo text`` and ``/hailuo animate``: parse, check, reserve, answer inside 3 seconds.

The order is the design's "first answer": checks that need no download run
at once and a broken rule is answered ephemerally; for ``text`` the job (with
its reservation) is created and the public status card is the response; for
``animate`` the card ("checking your image") is the response, the image is
downloaded and checked, and only then is the job created. If that fails, the
card is deleted and the member is told privately; nothing is reserved.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs.errors import answer_privately, describe
from cogs.render import checking_embed, status_embed
from hailuo import images
from hailuo.camera import parse_prompt
from hailuo.errors import HailuoError, UserInputError
from hailuo.jobs import JobRequest
from hailuo.spec import JobSpec, Mode, check_spec

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)

#: What leaves the bot: JPEG or PNG only (Freepik takes no WebP), under the 20 MB rule.
SEND_FORMATS = frozenset({"JPEG", "PNG"})


def build_spec(mode: Mode, prompt: str, duration: int, resolution: str) -> JobSpec:
    spec = JobSpec(mode=mode, prompt=prompt.strip(), duration=duration, resolution=resolution)
    check_spec(spec)
    if spec.prompt:
        parse_prompt(spec.prompt)  # camera syntax is checked before anything is charged
    return spec


def _guild_ids(interaction: discord.Interaction) -> tuple[int, int]:
    if interaction.guild_id is None or interaction.channel_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id, interaction.channel_id


def _attachment_limit(interaction: discord.Interaction) -> int | None:
    try:
        return int(interaction.filesize_limit)
    except (KeyError, TypeError, ValueError):  # older payloads lack attachment_size_limit
        return None


async def text(bot: HailuoBot, interaction: discord.Interaction, spec: JobSpec) -> None:
    started = time.monotonic()
    guild_id, channel_id = _guild_ids(interaction)
    await bot.desk.precheck(guild_id, interaction.user.id, spec)
    job = await bot.desk.create(
        JobRequest(
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=interaction.user.id,
            spec=spec,
            interaction_id=interaction.id,
            locale=str(interaction.locale),
            attachment_limit=_attachment_limit(interaction),
        )
    )
    callback = await interaction.response.send_message(embed=status_embed(job))
    bot.metrics.interaction_answered(time.monotonic() - started)
    if callback.message_id is not None:
        await bot.desk.jobs.set_status_message(job.id, channel_id, callback.message_id, bot.clock())
    bot.worker.wake()


async def animate(
    bot: HailuoBot, interaction: discord.Interaction, spec: JobSpec, image: discord.Attachment
) -> None:
    started = time.monotonic()
    guild_id, channel_id = _guild_ids(interaction)
    images.check_declared(
        content_type=image.content_type, size=image.size, width=image.width, height=image.height
    )
    await bot.desk.precheck(guild_id, interaction.user.id, spec)
    locale = str(interaction.locale)
    callback = await interaction.response.send_message(embed=checking_embed(locale))
    bot.metrics.interaction_answered(time.monotonic() - started)
    message_id = callback.message_id
    try:
        checked = await images.inspect_async(await image.read())
        prepared = await images.prepare_async(
            checked, accepted_formats=SEND_FORMATS, max_bytes=images.DEFAULT_RULES.max_bytes
        )
        job = await bot.desk.create(
            JobRequest(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=interaction.user.id,
                spec=spec,
                interaction_id=interaction.id,
                status_message_id=message_id,
                locale=locale,
                attachment_limit=_attachment_limit(interaction),
                images={"first": (prepared.mime, prepared.data)},
            )
        )
    except HailuoError as exc:
        await _withdraw(bot, channel_id, message_id)
        await answer_privately(interaction, describe(exc, locale))
        return
    except discord.HTTPException as exc:
        await _withdraw(bot, channel_id, message_id)
        log.warning("could not read the attachment: %s", exc.status)
        await answer_privately(interaction, describe(UserInputError("image.corrupt"), locale))
        return
    if message_id is not None:
        await _edit(bot, channel_id, message_id, status_embed(job))
    bot.worker.wake()


async def _withdraw(bot: HailuoBot, channel_id: int, message_id: int | None) -> None:
    """Delete the status card of a request that did not become a job."""
    if message_id is None:
        return
    try:
        await bot.get_partial_messageable(channel_id).get_partial_message(message_id).delete()
    except discord.HTTPException as exc:
        log.warning("could not delete status card %s: %s", message_id, exc.status)


async def _edit(bot: HailuoBot, channel_id: int, message_id: int, embed: discord.Embed) -> None:
    try:
        await (
            bot.get_partial_messageable(channel_id)
            .get_partial_message(message_id)
            .edit(embed=embed)
        )
    except discord.HTTPException as exc:
        log.warning("could not edit status card %s: %s", message_id, exc.status)


class GenerateCommands(commands.Cog):
    """``/hailuo text`` and ``/hailuo animate``; mixed into the one ``/hailuo`` group cog."""

    bot: HailuoBot

    @app_commands.command(name="text", description="Make a video from a text prompt")
    @app_commands.describe(
        prompt="What should happen in the video (camera commands like [Pan left] allowed)",
        duration="Length in seconds (1080P is 6 s only)",
        resolution="Video resolution",
    )
    async def text(
        self,
        interaction: discord.Interaction,
        prompt: str,
        duration: Literal[6, 10] = 6,
        resolution: Literal["768P", "1080P"] = "768P",
    ) -> None:
        spec = build_spec(Mode.TEXT, prompt, duration, resolution)
        await text(self.bot, interaction, spec)

    @app_commands.command(name="animate", description="Bring an image to life")
    @app_commands.describe(
        image="A JPG, PNG or WebP picture (shorter side over 300 px)",
        prompt="What should happen (optional)",
        duration="Length in seconds (1080P is 6 s only)",
        resolution="Video resolution",
    )
    async def animate(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: str = "",
        duration: Literal[6, 10] = 6,
        resolution: Literal["768P", "1080P"] = "768P",
    ) -> None:
        spec = build_spec(Mode.IMAGE, prompt, duration, resolution)
        await animate(self.bot, interaction, spec, image)
