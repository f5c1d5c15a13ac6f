"""The one place where errors become words a member reads.

Commands raise; the tree's ``on_error`` calls ``describe`` and answers
ephemerally (a response if none was sent yet, a follow-up otherwise). Button
callbacks and the background notifier call ``describe`` too, so a member
reads the same words whichever path failed. An unexpected error gets a short
incident id, logged with its traceback; its text never reaches the member.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from hailuo.i18n.messages import Term, render
from hailuo.model.errors import HailuoError
from hailuo.model.job import Job

log = logging.getLogger(__name__)


def describe(error: BaseException, locale: str | None, made: Job | None = None) -> str:
    """The member-facing text for ``error`` (unwrapping discord.py's wrappers).

    ``made``: the job the failed interaction had created already, if any. An
    unexpected error then says what became of its credits (held by the job, which
    goes on, and refunded if it fails), not "Nothing was charged".
    """
    original = unwrap(error)
    if isinstance(original, HailuoError):
        return render(original.rule, locale, **original.params)
    if isinstance(original, app_commands.NoPrivateMessage):
        return render("error.guild_only", locale)
    incident = secrets.token_hex(4)
    log.error("incident %s", incident, exc_info=original)
    if made is not None:
        return render(
            "error.unexpected_job",
            locale,
            incident=incident,
            job_id=made.id,
            cost=made.cost,
            state=Term(f"state.{made.status.value}"),
        )
    return render("error.unexpected", locale, incident=incident)


async def made_by(interaction: discord.Interaction) -> Job | None:
    """The job ``interaction`` created before it failed, asked of the core (None: none)."""
    desk = getattr(interaction.client, "desk", None)
    if desk is None:
        return None
    try:
        job: Job | None = await desk.made_by(interaction.id)
    except Exception:  # the error message must still go out
        log.exception("could not look up the job of interaction %s", interaction.id)
        return None
    return job


def unwrap(error: BaseException) -> BaseException:
    while isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        error = (
            error.original
            if isinstance(error, app_commands.CommandInvokeError)
            else (error.__cause__ or error)
        )
        if not isinstance(error, app_commands.AppCommandError):
            break
    return error


async def answer_privately(interaction: discord.Interaction, text: str) -> None:
    """Say ``text`` only to the member, whether or not the interaction was answered yet."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the member about an error (interaction %s)", interaction.id)


class HailuoTree(app_commands.CommandTree[discord.Client]):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        made = None if isinstance(unwrap(error), HailuoError) else await made_by(interaction)
        await answer_privately(interaction, describe(error, str(interaction.locale), made))
