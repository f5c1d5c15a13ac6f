"""The Discord side of ``hailuo.notify.Notifier``: everything goes through the bot token.

Status edits and deliveries use the channel endpoints, never the interaction
webhook (its token dies after 15 minutes and with it any retry after a
restart). Deliveries carry a nonce derived from the job, with
``enforce_nonce``, so a retry within Discord's dedup window returns the first
message instead of posting a second one; past that window ``find_delivery``
looks for the bot's own earlier post.

Everything created or edited in a channel goes through the channel's outbox
(``cogs/outbox.py``): posts in order and before card edits, card edits
coalesced, a 429 waited out and never an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import discord

from cogs.audit import audit_embed
from cogs.controls import controls_view
from cogs.outbox import Outbox
from cogs.render import status_embed
from hailuo.clock import to_datetime
from hailuo.messages import render
from hailuo.notify import AdminNotice, PostFailed, StatusView, UploadTooLarge
from storage.audit import AuditEntry
from storage.jobs import Job

log = logging.getLogger(__name__)


class DiscordNotifier:
    def __init__(self, client: discord.Client, outbox: Outbox | None = None) -> None:
        self.client = client
        self.outbox = outbox if outbox is not None else Outbox()

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def show_status(self, view: StatusView) -> None:
        job = view.job
        if job.status_message_id is None:
            return
        message = self._channel(job).get_partial_message(job.status_message_id)
        embed, controls = status_embed(job, view.queue_position), controls_view(job)

        async def edit() -> None:
            await message.edit(embed=embed, view=controls)

        # Queued, not awaited: a busy channel never holds up the job's life, and a newer
        # state of the card replaces this one if it is still waiting.
        self.outbox.edit(job.channel_id, job.status_message_id, edit)

    async def post_video(self, job: Job, video: Path, size: int) -> int:
        text = render("delivery.posted", job.locale, user_id=job.user_id, job_id=job.id)

        async def send() -> discord.Message:
            return await self._channel(job).send(
                text,
                file=discord.File(video, filename=f"hailuo-{job.id}.mp4"),
                nonce=f"hailuo-{job.id}-v",
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.user_id)]),
            )

        try:
            message = await self.outbox.post(job.channel_id, send)
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == 40005:
                raise UploadTooLarge(str(exc.code)) from None
            raise PostFailed(f"HTTP {exc.status} code {exc.code}") from None
        return message.id

    async def post_link(self, job: Job, url: str, reason: str) -> int:
        text = render(
            "delivery.link",
            job.locale,
            user_id=job.user_id,
            job_id=job.id,
            reason=render(reason, job.locale),
            url=url,
        )
        channel = self._channel(job)
        try:
            message = await self.outbox.post(
                job.channel_id,
                lambda: channel.send(
                    text,
                    nonce=f"hailuo-{job.id}-l",
                    allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.user_id)]),
                ),
            )
        except discord.HTTPException as exc:
            raise PostFailed(f"HTTP {exc.status} code {exc.code}") from None
        return message.id

    async def find_delivery(self, job: Job) -> int | None:
        marker = f"(job #{job.id})"
        me = self.client.user
        after = discord.Object(discord.utils.time_snowflake(to_datetime(job.created_at)))
        try:
            async for message in self._channel(job).history(limit=100, after=after):
                if me is not None and message.author.id == me.id and marker in message.content:
                    return message.id
        except discord.HTTPException as exc:
            raise PostFailed(f"history: HTTP {exc.status}") from None
        return None

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        guild = self.client.get_guild(guild_id)
        return guild.filesize_limit if guild else None

    async def admin_notice(self, notice: AdminNotice) -> None:
        guild = self.client.get_guild(notice.guild_id)
        channel_id = notice.channel_id
        if channel_id is None and guild is not None:
            # No notice channel chosen: the server's own updates or system channel.
            fallback = guild.public_updates_channel or guild.system_channel
            channel_id = fallback.id if fallback is not None else None
        if channel_id is None:
            log.warning("admin notice %s for guild %d: no channel", notice.rule, notice.guild_id)
            return
        locale = str(guild.preferred_locale) if guild is not None else None
        text = render(notice.rule, locale, **notice.params)
        channel = self.client.get_partial_messageable(channel_id, guild_id=notice.guild_id)
        try:
            await self.outbox.post(
                channel_id,
                lambda: channel.send(text, allowed_mentions=discord.AllowedMentions.none()),
            )
        except discord.HTTPException as exc:
            log.warning(
                "admin notice %s for guild %d failed: %s %s",
                notice.rule,
                notice.guild_id,
                exc.status,
                exc.code,
            )

    async def log_event(self, channel_id: int, entry: AuditEntry) -> None:
        guild = self.client.get_guild(entry.guild_id)
        locale = str(guild.preferred_locale) if guild is not None else None
        channel = self.client.get_partial_messageable(channel_id, guild_id=entry.guild_id)
        embed = audit_embed(entry, locale)
        try:
            await self.outbox.post(
                channel_id,
                lambda: channel.send(embed=embed, allowed_mentions=discord.AllowedMentions.none()),
            )
        except discord.HTTPException as exc:
            log.warning(
                "audit row %d for guild %d not mirrored: %s %s",
                entry.id,
                entry.guild_id,
                exc.status,
                exc.code,
            )
