"""``/hailuo help``: the camera commands, what this server's providers offer, costs, image rules.

Every number comes from the tables it describes (``hailuo.model.camera``,
``hailuo.jobs.capabilities``, the server's cost table), so the help cannot drift from the
rules the bot enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.account import cost_list
from hailuo.i18n.messages import Either, render
from hailuo.i18n.terms import MODE_LABELS
from hailuo.jobs import capabilities
from hailuo.model import camera
from hailuo.model.errors import UserInputError
from providers.registry import TABLE

if TYPE_CHECKING:
    from bot import HailuoBot


def describe(command: camera.CameraCommand, locale: str | None = None) -> str:
    """What a camera command does, in ``locale`` (English by default): catalog entry
    ``camera.describe.<key>`` (the camera grammar itself holds no words)."""
    return render(f"camera.describe.{command.key}", locale)


def help_lines(locale: str | None = None) -> list[str]:
    """One line per command for ``/hailuo help``: ``[Pan left] / [左摇]: ...``, in ``locale``."""
    return [
        render(
            "help.camera_line",
            locale,
            english=c.english,
            chinese=c.chinese,
            description=describe(c, locale),
        )
        for c in camera.COMMANDS
    ]


def help_embed(order: Sequence[str], locale: str | None, costs: str) -> discord.Embed:
    """The help card for a server using ``order``; ``costs`` is its cost list, in words."""
    description = "\n".join(
        [
            render("help.camera", locale, maximum=camera.MAX_RECOMMENDED_PER_GROUP),
            *help_lines(locale),
        ]
    )
    embed = discord.Embed(
        title=render("help.title", locale),
        description=description,
        colour=discord.Colour.blurple(),
    )
    offers = [
        render(
            "help.offer_line",
            locale,
            mode=MODE_LABELS[mode],
            resolutions=[
                render(
                    "help.resolution",
                    locale,
                    resolution=res,
                    durations="/".join(str(d) for d in sorted(durations)),
                )
                for res, durations in resolutions.items()
            ],
            models=models,
        )
        for mode, (models, resolutions) in capabilities.offered(order, TABLE).items()
    ]
    if offers:
        embed.add_field(name=render("help.offers", locale), value="\n".join(offers), inline=False)
    embed.add_field(
        name=render("help.costs_title", locale),
        value=render("help.costs", locale, costs=costs),
        inline=False,
    )
    plan = capabilities.image_plan(order, TABLE)
    rules = plan.check
    embed.add_field(
        name=render("help.images_title", locale),
        value=render(
            "help.images",
            locale,
            formats=sorted(rules.formats),
            max_bytes=rules.max_bytes,
            max_pixels=rules.max_pixels,
            min_short_edge=rules.min_short_edge,
            aspect_min="{}:{}".format(*rules.aspect_min),
            aspect_max="{}:{}".format(*rules.aspect_max),
            send_formats=Either(sorted(plan.send_formats)),
        ),
        inline=False,
    )
    return embed


class HelpCommands(commands.Cog):
    """``/hailuo help``; mixed into the one ``/hailuo`` group cog."""

    bot: HailuoBot

    @app_commands.command(name="help", description="Camera commands, resolutions, costs, images")
    async def help_command(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserInputError("error.guild_only")
        locale = str(interaction.locale)
        policy = await self.bot.desk.policy(interaction.guild_id)
        embed = help_embed(self.bot.settings.provider_names, locale, cost_list(policy, locale))
        await interaction.response.send_message(embed=embed, ephemeral=True)
