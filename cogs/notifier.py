"""The Discord side of ``hailuo.notify.Notifier``: everything goes through the bot token.

Status edits and deliveries use the channel endpoints, never the interaction
webhook (its token dies after 15 minutes and with it any retry after a
restart). Deliveries carry a nonce derived from the job, with
``enforce_nonce``, so a retry within Discord's dedup window returns the first
message instead of posting a second one; past that window ``find_delivery``
looks for the bot's own earlier post.
"""

from __future__ import annotations

import logging
from pathlib import Path

import discord

from cogs.audit import audit_embed
from cogs.controls import controls_view
from cogs.links import fresh_link_view
from cogs.render import status_embed
from hailuo.clock import to_datetime
from hailuo.messages import render
from hailuo.notify import AdminNotice, PostFailed, Shrunk, StatusView, UploadTooLarge
from storage.audit import AuditEntry
from storage.jobs import Job

log = logging.getLogger(__name__)

MIB = 1024 * 1024


def megabytes(size: int) -> str:
    """Bytes as Discord counts an upload limit (MiB): one decimal, two digits under 1 MB."""
    mb = size / MIB
    return f"{mb:.1f}".removesuffix(".0") if mb >= 1 else f"{mb:.2g}"


class DiscordNotifier:
    def __init__(self, client: discord.Client) -> None:
        self.client = client

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def show_status(self, view: StatusView) -> None:
        job = view.job
        if job.status_message_id is None:
            return
        message = self._channel(job).get_partial_message(job.status_message_id)
        try:
            await message.edit(
                embed=status_embed(job, view.queue_position), view=controls_view(job)
            )
        except discord.HTTPException as exc:
            # Best effort: a status edit never blocks the job's life.
            log.warning("status edit failed job=%d: %s %s", job.id, exc.status, exc.code)

    async def post_video(
        self, job: Job, video: Path, size: int, *, shrunk: Shrunk | None = None
    ) -> int:
        file = discord.File(video, filename=f"hailuo-{job.id}.mp4")
        if shrunk is None:
            text = render("delivery.posted", job.locale, user_id=job.user_id, job_id=job.id)
        else:
            text = render(
                "delivery.compressed",
                job.locale,
                user_id=job.user_id,
                job_id=job.id,
                size_mb=megabytes(shrunk.size),
                limit_mb=megabytes(shrunk.limit),
                url=shrunk.url,
            )
        try:
            message = await self._channel(job).send(
                text,
                file=file,
                nonce=f"hailuo-{job.id}-v",
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.user_id)]),
            )
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == 40005:
                raise UploadTooLarge(str(exc.code)) from None
            raise PostFailed(f"HTTP {exc.status} code {exc.code}") from None
        return message.id

    async def post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        sizes = {"size_mb": megabytes(size or 0), "limit_mb": megabytes(limit or 0)}
        text = render(
            "delivery.link",
            job.locale,
            user_id=job.user_id,
            job_id=job.id,
            reason=render(reason, job.locale, **sizes),
            url=url,
        )
        try:
            message = await self._channel(job).send(
                text,
                view=fresh_link_view(job),
                nonce=f"hailuo-{job.id}-l",
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.user_id)]),
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
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
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
        try:
            await channel.send(
                embed=audit_embed(entry, locale), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.warning(
                "audit row %d for guild %d not mirrored: %s %s",
                entry.id,
                entry.guild_id,
                exc.status,
                exc.code,
            )
