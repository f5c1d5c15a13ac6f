"""The ``/hailuo`` group, defined once; each command delegates to its module.

Option values that Discord constrains (choices) are still checked again in
``hailuo.spec``: a client can send anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs import account, generate
from hailuo.spec import Mode

if TYPE_CHECKING:
    from bot import HailuoBot


@app_commands.guild_only()
class HailuoCommands(
    commands.GroupCog,
    group_name="hailuo",
    group_description="Make short AI videos with MiniMax Hailuo-02",
):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        super().__init__()

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
        spec = generate.build_spec(Mode.TEXT, prompt, duration, resolution)
        await generate.text(self.bot, interaction, spec)

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
        spec = generate.build_spec(Mode.IMAGE, prompt, duration, resolution)
        await generate.animate(self.bot, interaction, spec, image)

    @app_commands.command(name="quota", description="How many credits you have left")
    async def quota(self, interaction: discord.Interaction) -> None:
        await account.quota(self.bot, interaction)
