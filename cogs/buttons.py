"""Every button of the bot, and presses of a button its message no longer shows.

Between a member's click and Discord's delivery of it the bot may have edited the
message: a card loses Cancel once its video is being posted and gains Re-roll once it
is delivered. Discord sends the message as it is by then, and discord.py, finding the
pressed button missing from it, drops the press without an answer: the member reads
"This interaction failed". The bot runs such a press like any other instead. Every
button's action reads its job as it is now, so it answers or refuses naming the rule
("Video #12 is delivered already; nothing to cancel.").
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord.ext import commands

from cogs.approvals import APPROVAL_ITEMS
from cogs.audit import AuditPageButton
from cogs.controls import CONTROL_ITEMS, guarded
from cogs.extend import EXTEND_ITEMS
from cogs.links import FreshLinkButton

log = logging.getLogger(__name__)

Button = type[discord.ui.DynamicItem[Any]]

#: Persistent across restarts: each one is rebuilt from its custom id at its press.
BUTTONS: tuple[Button, ...] = (
    AuditPageButton,
    *APPROVAL_ITEMS,
    *CONTROL_ITEMS,
    *EXTEND_ITEMS,
    FreshLinkButton,
)


def shown(message: discord.Message) -> set[str]:
    """The custom ids of the components ``message`` shows (as discord.py reads them)."""
    kind = discord.ui.LayoutView if message.flags.components_v2 else discord.ui.View
    view = kind.from_message(message, timeout=None)
    return {cid for item in view.walk_children() if (cid := getattr(item, "custom_id", None))}


def stale_press(
    interaction: discord.Interaction, buttons: tuple[Button, ...]
) -> tuple[Button, re.Match[str], str] | None:
    """The bot's button a press is of, when its message no longer shows it (discord.py
    dispatches every other press itself); None otherwise."""
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    if (
        interaction.type is not discord.InteractionType.component
        or data.get("component_type") != discord.ComponentType.button.value
        or not isinstance(custom_id, str)
        or interaction.message is None
    ):
        return None
    for button in buttons:
        match = button.__discord_ui_compiled_template__.fullmatch(custom_id)
        if match is not None:
            # Only a press of ours reads the message's components (discord.py reads them too).
            return None if custom_id in shown(interaction.message) else (button, match, custom_id)
    return None


class StalePresses(commands.Cog):
    """Runs a press of one of ``buttons`` that discord.py would drop unanswered."""

    def __init__(self, buttons: tuple[Button, ...] = BUTTONS) -> None:
        self.buttons = buttons

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        press = stale_press(interaction, self.buttons)
        if press is None:
            return
        log.info("press of %s, no longer on its message: run as it is now", press[2])
        # A refusal or a bug is told privately, as for a press discord.py dispatches.
        await guarded(interaction, run_press(interaction, *press))


async def run_press(
    interaction: discord.Interaction, button: Button, match: re.Match[str], custom_id: str
) -> None:
    """Build the pressed button from its custom id and run it, as discord.py would."""
    shown_as: discord.ui.Button[Any] = discord.ui.Button(custom_id=custom_id)
    item = await button.from_custom_id(interaction, shown_as, match)
    if await item.interaction_check(interaction):
        await item.callback(interaction)
