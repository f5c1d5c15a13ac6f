"""The moderators' side of the approval queue: the request message, Approve, Reject.

One message per held job goes to the server's log channel (else the channel of
the request): the member, the prompt, the cost, the first-frame image and two
``DynamicItem`` buttons, ``hailuo:approve:<job>`` and ``hailuo:reject:<job>``,
that keep working after a restart. Who may press is checked on every press
(``hailuo.moderation.approval.may_moderate``: the moderator role or Manage Messages).

Reject opens a modal (``hailuo:reject-reason:<job>``) for the reason the member
reads. The modal is not kept in discord.py's view store: its submission is
handled by ``ApprovalEvents.on_interaction`` from the custom_id alone, so a
modal opened before a restart still lands, and no press can beat the store.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from cogs.controls import (
    JOB,
    ControlsView,
    JobButton,
    actor_of,
    guarded,
    guild_of,
    hailuo_bot,
)
from cogs.outbox import Outbox
from cogs.render import add_settings_field, clip
from hailuo.i18n.messages import render
from hailuo.jobs.notify import PostFailed
from hailuo.model.job import Job, StoredImage
from hailuo.moderation.approval import Actor, ApprovalQueue
from hailuo.records import ApprovalDecision, ApprovalRequest

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)

REASON_FIELD = "reason"
REJECT_MODAL = re.compile(rf"hailuo:reject-reason:{JOB}")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_COLOURS = {
    None: discord.Colour.orange(),
    ApprovalDecision.APPROVED: discord.Colour.green(),
    ApprovalDecision.REJECTED: discord.Colour.red(),
    ApprovalDecision.EXPIRED: discord.Colour.dark_grey(),
    ApprovalDecision.CANCELLED: discord.Colour.dark_grey(),
}


def queue_of(interaction: discord.Interaction) -> ApprovalQueue:
    return hailuo_bot(interaction).services.approvals


async def deciding(interaction: discord.Interaction, job_id: int) -> tuple[int, Actor]:
    """The server the press came from and the presser, for a decision about ``job_id``.

    The job must be that server's (else it is unknown). Manage Messages counts where
    the request lives (its own channel or the moderators' channel); a press from any
    other channel is judged by the presser's permissions in the job's channel.
    """
    guild_id = guild_of(interaction)
    channels = await queue_of(interaction).decision_channels(guild_id, job_id)
    pressed = interaction.channel_id
    return guild_id, actor_of(interaction, pressed if pressed in channels else channels[0])


class ApproveButton(JobButton, template=rf"hailuo:approve:{JOB}"):
    action = "approve"
    label_code = "approval.button.approve"
    style = discord.ButtonStyle.success

    async def pressed(self, interaction: discord.Interaction) -> None:
        guild_id, actor = await deciding(interaction, self.job_id)
        decision = await queue_of(interaction).approve(guild_id, self.job_id, actor)
        text = render("approval.done.approved", str(interaction.locale), job_id=decision.job.id)
        await interaction.response.send_message(text, ephemeral=True)


class RejectButton(JobButton, template=rf"hailuo:reject:{JOB}"):
    action = "reject"
    label_code = "approval.button.reject"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction) -> None:
        # Refuse before the modal opens; the submission is judged again when it lands.
        guild_id, actor = await deciding(interaction, self.job_id)
        await queue_of(interaction).check_pending(guild_id, self.job_id, actor)
        modal = RejectModal(self.job_id, str(interaction.locale))
        # Not kept in the view store: ApprovalEvents handles the submission by its custom_id.
        modal.stop()
        await interaction.response.send_modal(modal)


class RejectModal(discord.ui.Modal):
    def __init__(self, job_id: int, locale: str) -> None:
        super().__init__(
            title=render("approval.modal.title", locale, job_id=job_id)[:45],
            custom_id=f"hailuo:reject-reason:{job_id}",
            timeout=None,
        )
        self.add_item(
            discord.ui.TextInput(
                label=render("approval.modal.reason", locale)[:45],
                custom_id=REASON_FIELD,
                style=discord.TextStyle.paragraph,
                min_length=1,
                max_length=300,
            )
        )


APPROVAL_ITEMS: tuple[type[JobButton], ...] = (ApproveButton, RejectButton)


def _inputs(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every text input of a modal submission (in action rows, or in labels)."""
    for component in components:
        if component.get("type") == 4:
            yield component
        yield from _inputs(component.get("components") or [])
        if isinstance(component.get("component"), dict):
            yield from _inputs([component["component"]])


def submitted_reason(data: dict[str, Any]) -> str:
    for field in _inputs(data.get("components") or []):
        if field.get("custom_id") == REASON_FIELD:
            return str(field.get("value") or "")
    return ""


class ApprovalEvents(commands.Cog):
    """Reject modals land here, whoever opened them and whenever (restarts included)."""

    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = REJECT_MODAL.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        await guarded(interaction, self._reject(interaction, int(match["job"]), data))

    async def _reject(
        self, interaction: discord.Interaction, job_id: int, data: dict[str, Any]
    ) -> None:
        guild_id, actor = await deciding(interaction, job_id)
        decision = await queue_of(interaction).reject(
            guild_id, job_id, actor, submitted_reason(data)
        )
        text = render("approval.done.rejected", str(interaction.locale), job_id=decision.job.id)
        await interaction.response.send_message(text, ephemeral=True)


def approval_embed(job: Job, request: ApprovalRequest, locale: str | None) -> discord.Embed:
    """The moderators' view of a held job, and of its decision once there is one."""
    decision = request.decision
    if decision is None:
        state = render("approval.pending", locale, expires_at=int(request.expires_at))
    else:
        state = render(
            f"approval.decided.{decision.value}",
            locale,
            by=request.decided_by or 0,
            reason=request.reason,
        )
    embed = discord.Embed(
        title=render("approval.title", locale, job_id=job.id),
        description=state,
        colour=_COLOURS[decision],
    )
    embed.add_field(
        name=render("approval.field.member", locale), value=f"<@{job.user_id}>", inline=True
    )
    embed.add_field(
        name=render("status.field.cost", locale),
        value=render("status.cost", locale, cost=job.cost),
        inline=True,
    )
    spec = job.spec
    add_settings_field(embed, spec, locale)
    if spec.prompt:
        prompt = clip(spec.prompt, 1000)
        embed.add_field(name=render("status.field.prompt", locale), value=prompt, inline=False)
    return embed


class DiscordApprovalNotifier:
    """``moderation.approval.ApprovalNotifier``: the moderators' message, through the bot token."""

    def __init__(self, client: discord.Client, outbox: Outbox) -> None:
        self.client = client
        #: The moderators' channel's lane: a request and its decision queue with the rest.
        self.outbox = outbox

    def _locale(self, guild_id: int) -> str | None:
        guild = self.client.get_guild(guild_id)
        return str(guild.preferred_locale) if guild is not None else None

    async def post_request(
        self, channel_id: int, job: Job, request: ApprovalRequest, image: StoredImage | None
    ) -> int:
        locale = self._locale(job.guild_id)
        view = ControlsView()
        view.add_item(ApproveButton(job.id, locale)).add_item(RejectButton(job.id, locale))
        channel = self.client.get_partial_messageable(channel_id, guild_id=job.guild_id)

        def send() -> Awaitable[discord.Message]:
            # Built anew at each attempt (a 429 sends it again): a File is read once.
            options: dict[str, Any] = {}
            if image is not None:
                name = f"hailuo-{job.id}-first.{_EXTENSIONS.get(image.mime, 'png')}"
                options["file"] = discord.File(io.BytesIO(image.data), filename=name)
            return channel.send(
                embed=approval_embed(job, request, locale),
                view=view,
                nonce=f"hailuo-{job.id}-a",
                allowed_mentions=discord.AllowedMentions.none(),
                **options,
            )

        try:
            message = await self.outbox.post(channel_id, send)
        except discord.HTTPException as exc:
            raise PostFailed(f"HTTP {exc.status} code {exc.code}") from None
        except discord.DiscordException as exc:  # a long rate limit: the announcer retries
            raise PostFailed(type(exc).__name__) from None
        return message.id

    async def show_decision(self, job: Job, request: ApprovalRequest) -> None:
        if request.mod_message_channel_id is None or request.mod_message_id is None:
            return
        locale = self._locale(job.guild_id)
        channel_id = request.mod_message_channel_id
        message = self.client.get_partial_messageable(
            channel_id, guild_id=job.guild_id
        ).get_partial_message(request.mod_message_id)
        embed = approval_embed(job, request, locale)
        try:
            # In the channel's lane, awaited like a post: this runs in the background (the
            # presser was answered already), and the decision shows once this returns.
            await self.outbox.post(channel_id, lambda: message.edit(embed=embed, view=None))
        except discord.DiscordException as exc:
            # Best effort: the decision is stored, and a press on a stale button is refused.
            log.warning("approval message of job %d not edited: %s", job.id, exc)
