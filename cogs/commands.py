"""The ``/hailuo`` group, defined once, composed from one mixin per feature.

discord.py collects app commands along the class's MRO, so each feature keeps
its commands in its own module (``generate``, ``account``, …) while Discord
sees one group; two cogs declaring ``/hailuo`` would collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from cogs.account import AccountCommands
from cogs.controls import ControlCommands
from cogs.generate import GenerateCommands
from cogs.help import HelpCommands
from cogs.results import MemberSettingsCommands

if TYPE_CHECKING:
    from bot import HailuoBot


@app_commands.guild_only()
class HailuoCommands(
    GenerateCommands,
    AccountCommands,
    HelpCommands,
    ControlCommands,
    MemberSettingsCommands,
    commands.GroupCog,
    group_name="hailuo",
    group_description="Make short AI videos with MiniMax Hailuo-02",
):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot
        super().__init__()
