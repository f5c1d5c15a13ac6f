"""The buttons on every status card (Cancel, Re-roll, Delete, Info) and ``/hailuo cancel``.

Each button is a ``DynamicItem`` whose ``custom_id`` carries the job id
(``hailuo:cancel:42``), registered once in ``HailuoBot.setup_hook``, so a card
keeps working after a restart with nothing stored per message. The card shows
only the buttons its job's state allows (``controls_view``; the states come from
``hailuo.jobs.controls``), and every press is judged again by the core as the job is
now. Refusals are ``HailuoError``s shown through ``cogs.errors``'s one map.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs.access import check_channel_access, permissions_in
from cogs.account import member_roles
from cogs.errors import answer_privately, describe
from cogs.render import clip, info_text, status_embed
from hailuo.i18n.messages import render
from hailuo.jobs.controls import CANCELLABLE, REROLLABLE, JobControls
from hailuo.jobs.notify import PostFailed
from hailuo.model.errors import UserInputError
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import Actor

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)

JOB = r"(?P<job>[0-9]{1,19})"


def hailuo_bot(interaction: discord.Interaction) -> HailuoBot:
    return cast("HailuoBot", interaction.client)


def controls_of(interaction: discord.Interaction) -> JobControls:
    return hailuo_bot(interaction).services.controls


def actor_of(interaction: discord.Interaction, channel_id: int | None = None) -> Actor:
    """The presser as Discord describes them now: their roles, and Manage Messages in
    ``channel_id`` (the job's own channel), else where they pressed.

    Where they pressed is not where the job lives: Manage Messages in one channel
    must not make a member a moderator of every job of the server (``/hailuo cancel``
    typed anywhere, a button of a crafted message).
    """
    permissions = permissions_in(interaction, channel_id)
    return Actor(
        user_id=interaction.user.id,
        role_ids=member_roles(interaction),
        manage_messages=permissions.manage_messages or permissions.administrator,
    )


def guild_of(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id


async def on_job(interaction: discord.Interaction, job_id: int) -> tuple[int, int, Actor]:
    """What a job control acts on: ``(guild_id, job_id, actor)``, in ``JobControls``' order.

    The job must be this server's (else it is unknown), and the actor's Manage Messages
    is read in the job's own channel.
    """
    guild_id = guild_of(interaction)
    job = await controls_of(interaction).job(guild_id, job_id)
    return guild_id, job_id, actor_of(interaction, job.channel_id)


def joined_at(interaction: discord.Interaction) -> float | None:
    """When the member joined the server (the approval policy's "new member"), if known."""
    user = interaction.user
    joined = user.joined_at if isinstance(user, discord.Member) else None
    return joined.timestamp() if joined is not None else None


def parent_channel(interaction: discord.Interaction) -> int | None:
    """A thread's parent channel: the server's channel gate allows it like its own."""
    parent = getattr(interaction.channel, "parent_id", None)
    return parent if isinstance(parent, int) else None


def attachment_limit(interaction: discord.Interaction) -> int | None:
    """The channel's upload limit, if the payload says it."""
    try:
        return int(interaction.filesize_limit)
    except (KeyError, TypeError, ValueError):  # older payloads lack attachment_size_limit
        return None


async def guarded(interaction: discord.Interaction, work: Awaitable[None]) -> None:
    """Run a press; a refusal or a bug is told privately through the one error map."""
    try:
        await work
    except Exception as exc:
        await answer_privately(interaction, describe(exc, str(interaction.locale)))


class ControlsView(discord.ui.View):
    """A persistent view of dynamic buttons; errors go through the same map as commands."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await answer_privately(interaction, describe(error, str(interaction.locale)))


class JobButton(discord.ui.DynamicItem[discord.ui.Button[ControlsView]], template=r"^$"):
    """A button about one job; subclasses set ``template``, ``action``, label and style."""

    action = ""
    label_code = ""
    style = discord.ButtonStyle.secondary

    def __init__(self, job_id: int, locale: str | None = None, **label: object) -> None:
        super().__init__(
            discord.ui.Button(
                label=render(self.label_code, locale, **label),
                style=self.style,
                custom_id=f"hailuo:{self.action}:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, self.pressed(interaction))

    async def pressed(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


async def _say(
    interaction: discord.Interaction, text: str, view: discord.ui.View | None = None
) -> None:
    none = discord.AllowedMentions.none()
    if view is None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=none)
    else:
        await interaction.response.send_message(
            text, ephemeral=True, view=view, allowed_mentions=none
        )


async def start_cancel(interaction: discord.Interaction, job_id: int) -> None:
    """Cancel (button or command): at once when refunded, after a confirm when charged."""
    locale = str(interaction.locale)
    controls, target = controls_of(interaction), await on_job(interaction, job_id)
    plan = await controls.plan_cancel(*target)
    if plan.charged:
        view = ControlsView().add_item(ConfirmCancelButton(job_id, locale))
        text = render("control.cancel.confirm", locale, job_id=job_id, cost=plan.job.cost)
        await _say(interaction, text, view)
        return
    done = await controls.cancel(*target, confirmed=False)
    await _say(interaction, _cancelled_text(done.job, done.charged, locale))


def _cancelled_text(job: Job, charged: bool, locale: str) -> str:
    code = "control.cancel.done_charged" if charged else "control.cancel.done_refund"
    return render(code, locale, job_id=job.id, cost=job.cost)


class CancelButton(JobButton, template=rf"hailuo:cancel:{JOB}"):
    action = "cancel"
    label_code = "control.button.cancel"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction) -> None:
        await start_cancel(interaction, self.job_id)


class ConfirmCancelButton(JobButton, template=rf"hailuo:cancel-ok:{JOB}"):
    action = "cancel-ok"
    label_code = "control.button.confirm_cancel"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        done = await controls_of(interaction).cancel(
            *await on_job(interaction, self.job_id), confirmed=True
        )
        await interaction.response.edit_message(
            content=_cancelled_text(done.job, done.charged, locale), view=None
        )


class RerollButton(JobButton, template=rf"hailuo:reroll:{JOB}"):
    action = "reroll"
    label_code = "control.button.reroll"
    style = discord.ButtonStyle.primary

    async def pressed(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        plan = await controls_of(interaction).plan_reroll(*await on_job(interaction, self.job_id))
        view = ControlsView().add_item(ConfirmRerollButton(self.job_id, locale, cost=plan.cost))
        text = render(
            "control.reroll.confirm",
            locale,
            job_id=self.job_id,
            cost=plan.cost,
            remaining=plan.remaining,
        )
        await _say(interaction, text, view)


class ConfirmRerollButton(JobButton, template=rf"hailuo:reroll-ok:{JOB}"):
    action = "reroll-ok"
    label_code = "control.button.confirm_reroll"
    style = discord.ButtonStyle.success

    async def pressed(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        bot = hailuo_bot(interaction)
        check_channel_access(interaction)  # the new job lives where the confirm is pressed
        answers = bot.services.first_answers
        answers.begin(interaction.id)  # its card is posted below, once answered
        try:
            job = await self._reroll(interaction, bot, locale)
        finally:
            answers.end(interaction.id)
        if job is not None:
            from cogs.answers import catch_up  # here: cogs.answers imports us

            bot.desk.wake()
            await catch_up(bot, job)

    async def _reroll(
        self, interaction: discord.Interaction, bot: HailuoBot, locale: str
    ) -> Job | None:
        job = await controls_of(interaction).reroll(
            *await on_job(interaction, self.job_id),
            channel_id=interaction.channel_id,
            interaction_id=interaction.id,
            locale=locale,
            attachment_limit=attachment_limit(interaction),
            joined_at=joined_at(interaction),
            parent_channel_id=parent_channel(interaction),
        )
        # The confirm becomes the answer: a second press cannot make yet another job.
        text = render("control.reroll.done", locale, job_id=self.job_id, new_id=job.id)
        try:
            await interaction.response.edit_message(content=text, view=None)
        except Exception as exc:
            from cogs.answers import first_answer_failed  # here: cogs.answers imports us

            bot.services.first_answers.end(interaction.id)
            await first_answer_failed(bot, job, exc)
            return None
        channel = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:  # in the channel's lane, like every post (the press was answered above)
            card = await bot.outbox.post(
                job.channel_id,
                lambda: channel.send(embed=status_embed(job), view=controls_view(job)),
            )
        except discord.DiscordException as exc:
            # It ends with a new card that mentions the member (hailuo.jobs.cards).
            log.warning("could not post the card of re-roll %d: %s", job.id, exc)
            return job
        await bot.desk.attach_card(job.id, job.channel_id, card.id)
        return job


class DeleteButton(JobButton, template=rf"hailuo:delete:{JOB}"):
    action = "delete"
    label_code = "control.button.delete"
    style = discord.ButtonStyle.secondary

    async def pressed(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        job = await controls_of(interaction).delete_video(*await on_job(interaction, self.job_id))
        await _say(interaction, render("control.delete.done", locale, job_id=job.id))
        if job.status_message_id is not None:
            bot = hailuo_bot(interaction)
            card = bot.get_partial_messageable(job.channel_id).get_partial_message(
                job.status_message_id
            )
            view = controls_view(job, video_deleted=True)
            try:
                await bot.outbox.post(job.channel_id, lambda: card.edit(view=view))
            except discord.DiscordException as exc:
                log.warning("could not refresh card of job %d: %s", job.id, exc)


class InfoButton(JobButton, template=rf"hailuo:info:{JOB}"):
    action = "info"
    label_code = "control.button.info"
    style = discord.ButtonStyle.secondary

    async def pressed(self, interaction: discord.Interaction) -> None:
        info = await controls_of(interaction).info(guild_of(interaction), self.job_id)
        await _say(interaction, info_text(info, str(interaction.locale)))


CONTROL_ITEMS: tuple[type[JobButton], ...] = (
    CancelButton,
    ConfirmCancelButton,
    RerollButton,
    ConfirmRerollButton,
    DeleteButton,
    InfoButton,
)


def controls_view(job: Job, *, video_deleted: bool = False) -> ControlsView:
    """The buttons that make sense for the job's state, in one row."""
    locale = job.locale
    view = ControlsView()
    if job.status in CANCELLABLE:
        view.add_item(CancelButton(job.id, locale))
    if job.status in REROLLABLE:
        view.add_item(RerollButton(job.id, locale))
    if job.status is JobStatus.DELIVERED and job.delivered_message_id and not video_deleted:
        view.add_item(DeleteButton(job.id, locale))
    view.add_item(InfoButton(job.id, locale))
    return view


class ControlCommands(commands.Cog):
    """``/hailuo cancel``; mixed into the one ``/hailuo`` group cog."""

    bot: HailuoBot

    @app_commands.command(name="cancel", description="Cancel one of your videos in the making")
    @app_commands.describe(job="The video to cancel (your open videos are suggested)")
    async def cancel(self, interaction: discord.Interaction, job: int) -> None:
        await start_cancel(interaction, job)

    @cancel.autocomplete("job")
    async def _open_jobs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        controls = self.bot.services.controls
        if interaction.guild_id is None:
            return []
        locale = str(interaction.locale)
        typed = str(current).strip().lstrip("#")
        choices = []
        for job in await controls.open_jobs(interaction.guild_id, interaction.user.id):
            if typed and not str(job.id).startswith(typed):
                continue
            name = render(
                "control.cancel.choice",
                locale,
                job_id=job.id,
                state=render(f"state.{job.status.value}", locale),
                prompt=clip(job.spec.prompt or "—", 60),
            )
            choices.append(app_commands.Choice(name=clip(name, 100), value=job.id))
        return choices


class DiscordVideoRemover:
    """``hailuo.jobs.controls.VideoRemover``: delete the posted video with the bot token."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def remove_video(self, job: Job) -> bool:
        assert job.delivered_message_id is not None
        channel = self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            await channel.get_partial_message(job.delivered_message_id).delete()
        except discord.NotFound:
            return False
        except discord.HTTPException as exc:
            raise PostFailed(f"HTTP {exc.status} code {exc.code}") from None
        return True
