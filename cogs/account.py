"""``/hailuo quota``: what a member has left, derived from the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from hailuo.errors import UserInputError
from hailuo.messages import render
from hailuo.quotas import DEFAULT_COSTS

if TYPE_CHECKING:
    from bot import HailuoBot


async def quota(bot: HailuoBot, interaction: discord.Interaction) -> None:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    locale = str(interaction.locale)
    balance = await bot.desk.balance(interaction.guild_id, interaction.user.id)
    costs = ", ".join(f"{res} {dur} s = {cost}" for (res, dur), cost in DEFAULT_COSTS.items())
    text = "\n".join(
        [
            render(
                "quota.summary",
                locale,
                remaining=balance.remaining,
                allowance=balance.allowance,
                reserved=balance.reserved,
                renews_at=int(balance.renews_at),
            ),
            render("quota.costs", locale, costs=costs),
        ]
    )
    await interaction.response.send_message(text, ephemeral=True)


class AccountCommands(commands.Cog):
    """The member's own commands in ``/hailuo``; mixed into the group cog."""

    bot: HailuoBot

    @app_commands.command(name="quota", description="How many credits you have left")
    async def quota(self, interaction: discord.Interaction) -> None:
        await quota(self.bot, interaction)
