"""The **Extend** button under a delivered video: the next clip from its last frame.

Press → a modal asks for the next prompt → the bot fetches the video again, takes its
last frame (``hailuo.jobs.extending``), runs every check a new job passes and shows the
cost privately with a confirm button → the confirm creates an image-to-video job with
that frame, charged like any job, with its own card (and thread, if the server wants
one). The button's ``custom_id`` is ``hailuo:extend:<job>`` (a ``DynamicItem``,
registered once, so it works after a restart). The prepared frame waits for the confirm
in this process only; after a restart the confirm asks the member to press Extend again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from cogs.access import check_channel_access
from cogs.account import member_roles
from cogs.controls import (
    JOB,
    ControlsView,
    JobButton,
    attachment_limit,
    controls_view,
    guarded,
    guild_of,
    hailuo_bot,
    joined_at,
    parent_channel,
)
from cogs.render import status_embed
from cogs.results import check_thread_access, start_thread
from hailuo.i18n.messages import render
from hailuo.jobs.desk import JobRequest
from hailuo.jobs.extending import ExtendFrame
from hailuo.model.job import Job
from hailuo.moderation.approval import ActionRefused

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)

#: The longest next prompt the modal takes (the model's own prompt limit is checked later).
PROMPT_LIMIT = 2000


class ExtendButton(JobButton, template=rf"hailuo:extend:{JOB}"):
    action = "extend"
    label_code = "control.button.extend"
    style = discord.ButtonStyle.primary

    async def pressed(self, interaction: discord.Interaction) -> None:
        bot = hailuo_bot(interaction)
        await bot.services.extender.source(guild_of(interaction), self.job_id)
        await interaction.response.send_modal(ExtendModal(self.job_id, str(interaction.locale)))


class ExtendModal(discord.ui.Modal):
    """The next prompt; on submit, the frame and the cost."""

    def __init__(self, job_id: int, locale: str) -> None:
        super().__init__(
            title=render("extend.modal.title", locale, job_id=job_id)[:45],
            custom_id=f"hailuo:extend-prompt:{job_id}",
        )
        self.job_id = job_id
        self.prompt: discord.ui.TextInput[ExtendModal] = discord.ui.TextInput(
            label=render("extend.modal.prompt", locale)[:45],
            style=discord.TextStyle.paragraph,
            max_length=PROMPT_LIMIT,
            custom_id="prompt",
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, self._submit(interaction))

    async def _submit(self, interaction: discord.Interaction) -> None:
        bot = hailuo_bot(interaction)
        locale = str(interaction.locale)
        check_channel_access(interaction)
        await check_thread_access(bot, interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        frame = await bot.services.extender.frame(
            guild_of(interaction),
            self.job_id,
            self.prompt.value,
            attachment_url=_attachment_url(interaction.message),
            providers=bot.settings.provider_names,
        )
        cost = await bot.desk.precheck(
            guild_of(interaction),
            interaction.user.id,
            frame.spec,
            roles=member_roles(interaction),
            channel_id=interaction.channel_id,
            parent_channel_id=parent_channel(interaction),
        )
        bot.services.extender.hold(interaction.user.id, frame)
        view = ControlsView().add_item(ConfirmExtendButton(self.job_id, locale, cost=cost))
        text = render("extend.confirm", locale, job_id=self.job_id, cost=cost)
        await interaction.followup.send(text, view=view, ephemeral=True)


def _attachment_url(message: discord.Message | None) -> str | None:
    """The delivered MP4 on the message the button is under, if it is there."""
    if message is None:
        return None
    return next((a.url for a in message.attachments if a.filename.endswith(".mp4")), None)


class ConfirmExtendButton(JobButton, template=rf"hailuo:extend-ok:{JOB}"):
    action = "extend-ok"
    label_code = "control.button.confirm_extend"
    style = discord.ButtonStyle.success

    async def pressed(self, interaction: discord.Interaction) -> None:
        bot = hailuo_bot(interaction)
        locale = str(interaction.locale)
        check_channel_access(interaction)  # the new job lives where the confirm is pressed
        frame = bot.services.extender.take(interaction.user.id, self.job_id)
        if frame is None:
            raise ActionRefused("extend.expired", job_id=self.job_id)
        job = await bot.desk.create(_request(interaction, frame, locale))
        text = render("extend.started", locale, job_id=self.job_id, new_id=job.id)
        await interaction.response.edit_message(content=text, view=None)
        await _post_card(bot, job)
        bot.desk.wake()


def _request(interaction: discord.Interaction, frame: ExtendFrame, locale: str) -> JobRequest:
    assert interaction.channel_id is not None
    return JobRequest(
        guild_id=guild_of(interaction),
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        spec=frame.spec,
        interaction_id=interaction.id,
        locale=locale,
        attachment_limit=attachment_limit(interaction),
        images={"first": (frame.mime, frame.data)},
        roles=member_roles(interaction),
        parent_channel_id=parent_channel(interaction),
        joined_at=joined_at(interaction),
    )


async def _post_card(bot: HailuoBot, job: Job) -> None:
    """The new job's public card (and its thread); without one it ends with a new card."""
    channel = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
    try:  # in the channel's lane, like every post (the press was answered before)
        card = await bot.outbox.post(
            job.channel_id, lambda: channel.send(embed=status_embed(job), view=controls_view(job))
        )
    except discord.DiscordException as exc:
        log.warning("could not post the card of extend job %d: %s", job.id, exc)
        return
    await bot.desk.attach_card(job.id, job.channel_id, card.id)
    await start_thread(bot, job, card.id)


def extend_view(job: Job) -> ControlsView:
    """The delivered video's button."""
    return ControlsView().add_item(ExtendButton(job.id, job.locale))


EXTEND_ITEMS = (ExtendButton, ConfirmExtendButton)
