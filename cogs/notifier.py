"""The Discord side of ``hailuo.jobs.notify.Notifier``: everything goes through the bot token.

Status edits and deliveries use the channel endpoints, never the interaction
webhook (its token dies after 15 minutes and with it any retry after a
restart). Deliveries carry a nonce derived from the job, with
``enforce_nonce``, so a retry within Discord's dedup window returns the first
message instead of posting a second one; past that window ``find_delivery``
looks for the bot's own earlier post, in the whole window since the job's card.

Discord's answers are sorted here, once, into what the core can act on
(``_sorted``): a channel lost for good (10003, 50001, 50013) is ``ChannelLost``
and the member is then reached by a direct message; a member whose direct
messages are closed (50007) is ``DirectMessagesClosed``; anything else (a 429
past discord.py's own retries, a 5xx, a broken connection) is ``PostFailed``,
retried later on the delivery's budget of time.

Everything created or edited in a channel goes through the channel's outbox
(``cogs/outbox.py``): posts in order and before card edits, card edits
coalesced, a 429 waited out and never an error.

A job with no known card (``hailuo.jobs.cards.announces_without_card``) tells its end
with a new message in its channel that mentions the member, once; that message
is then remembered as its card.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import discord

from cogs.audit import audit_embed
from cogs.controls import controls_view
from cogs.extend import extend_view
from cogs.faults import NETWORK_ERRORS, UNKNOWN_CHANNEL, lane_of, megabytes, sorted_failure
from cogs.links import fresh_link_view
from cogs.outbox import Outbox
from cogs.render import status_embed
from cogs.replies import card_reference, dm_notice, mentions
from hailuo.clock import Clock, system_clock, to_datetime
from hailuo.i18n.messages import render
from hailuo.jobs.cards import CardBook, FirstAnswers, announces_without_card
from hailuo.jobs.notify import (
    AdminNotice,
    PostFailed,
    Shrunk,
    StatusView,
    UploadTooLarge,
)
from hailuo.model.job import Job
from hailuo.records import AuditEntry

log = logging.getLogger(__name__)

#: How many messages ``find_delivery`` reads at most; past it the window is not covered.
HISTORY_SCAN_LIMIT = 5000
#: When the job has no card yet, the window starts this long before the job's creation
#: (our clock and Discord's may differ a little).
CLOCK_MARGIN = 300.0


class DiscordNotifier:
    def __init__(
        self,
        client: discord.Client,
        outbox: Outbox | None = None,
        *,
        cards: CardBook | None = None,
        answers: FirstAnswers | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.client = client
        self.outbox = outbox if outbox is not None else Outbox()
        self.cards = cards  # where a card posted later is remembered; None: never posted
        self.answers = answers or FirstAnswers()
        self.clock = clock
        self._carded: set[int] = set()  # jobs given a new card by this process

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def show_status(self, view: StatusView) -> None:
        job = view.job
        if job.status_message_id is None:
            if announces_without_card(job, self.answers):
                await self.post_card(job)
            return
        message_id = job.status_message_id

        async def edit() -> None:
            # Drawn when its turn comes: an edit a newer one replaced is never drawn (after
            # a restart 10,000 cards of one channel change, and a few edits go out).
            message = self._channel(job).get_partial_message(message_id)
            embed = status_embed(job, view.queue_position, view.queue_eta, view.done_at)
            await message.edit(embed=embed, view=controls_view(job))
            if view.shown is not None:
                await view.shown()  # the card shows it now: remembered (never raises)

        # Queued, not awaited: a busy channel never holds up the job's life, and a newer
        # state of the card replaces this one if it is still waiting.
        self.outbox.edit(job.channel_id, message_id, edit)

    async def post_card(self, job: Job) -> int | None:
        """Post a new card for ``job`` that mentions its member, once, and remember it as
        the job's card; its id, or None if it was not posted (best effort: never raises)."""
        if self.cards is None or job.id in self._carded:
            return None
        self._carded.add(job.id)
        text = render("status.no_card", job.locale, user_id=job.user_id, job_id=job.id)
        channel = self._channel(job)
        try:
            message = await self.outbox.post(
                job.channel_id,
                lambda: channel.send(
                    text,
                    embed=status_embed(job),
                    view=controls_view(job),
                    nonce=f"hailuo-{job.id}-c",
                    allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.user_id)]),
                ),
            )
        except discord.HTTPException as exc:
            self._carded.discard(job.id)  # a later state change may try again
            log.warning("new card for job=%d failed: %s %s", job.id, exc.status, exc.code)
            return None
        await self.cards.claim_status_message(job.id, message.id, self.clock())
        log.info("job=%d had no card; posted one: %d", job.id, message.id)
        return message.id

    async def post_video(
        self, job: Job, video: Path, size: int, *, shrunk: Shrunk | None = None
    ) -> int:
        if shrunk is None:
            code = "delivery.posted" if job.notify == "mention" else "delivery.posted_quiet"
            text = render(code, job.locale, user_id=job.user_id, job_id=job.id)
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
        reference = card_reference(job) if job.thread_id is None else None
        message_id = await self._send_file(
            self._results(job),
            job,
            video,
            text,
            f"hailuo-{job.id}-v",
            reference=reference,
            view=extend_view(job),
        )
        await dm_notice(self, job, message_id)
        return message_id

    async def post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        text = self._link_text(job, url, reason, size, limit)
        message_id = await self._send_text(
            self._results(job), text, f"hailuo-{job.id}-l", job, view=fresh_link_view(job)
        )
        await dm_notice(self, job, message_id)
        return message_id

    def _results(self, job: Job) -> discord.PartialMessageable:
        """Where the job's result goes: its thread (a server's choice) or its channel."""
        return self.client.get_partial_messageable(job.results_channel_id, guild_id=job.guild_id)

    async def dm_video(self, job: Job, video: Path, size: int) -> int:
        text = self._direct_text(
            job, render("delivery.posted", job.locale, user_id=job.user_id, job_id=job.id)
        )
        channel = await self._direct_channel(job)
        return await self._send_file(channel, job, video, text, f"hailuo-{job.id}-dv", direct=True)

    async def dm_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        text = self._direct_text(job, self._link_text(job, url, reason, size, limit))
        channel = await self._direct_channel(job)
        return await self._send_text(
            channel, text, f"hailuo-{job.id}-dl", job, direct=True, view=fresh_link_view(job)
        )

    def _link_text(
        self, job: Job, url: str, reason: str, size: int | None, limit: int | None
    ) -> str:
        sizes = {"size_mb": megabytes(size or 0), "limit_mb": megabytes(limit or 0)}
        return render(
            "delivery.link",
            job.locale,
            user_id=job.user_id,
            job_id=job.id,
            reason=render(reason, job.locale, **sizes),
            url=url,
        )

    def _direct_text(self, job: Job, text: str) -> str:
        """A direct message says first where the video was asked for, and why it comes here."""
        return render("delivery.direct", job.locale, channel_id=job.channel_id) + "\n" + text

    async def _direct_channel(self, job: Job) -> discord.DMChannel:
        try:
            return await self.client.create_dm(discord.Object(job.user_id))
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise sorted_failure(exc, "open DM", direct=True) from None

    async def _send_file(
        self,
        channel: discord.abc.Messageable,
        job: Job,
        video: Path,
        text: str,
        nonce: str,
        *,
        direct: bool = False,
        reference: discord.MessageReference | None = None,
        view: discord.ui.View | None = None,
    ) -> int:

        async def send() -> discord.Message:
            return await channel.send(
                text,
                file=discord.File(video, filename=f"hailuo-{job.id}.mp4"),  # fresh per try
                nonce=nonce,
                reference=reference,  # type: ignore[arg-type]
                view=view or discord.utils.MISSING,
                mention_author=False,
                allowed_mentions=mentions(job),
            )

        try:
            message = await self.outbox.post(lane_of(channel, job), send)
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == 40005:
                raise UploadTooLarge(str(exc.code)) from None
            raise sorted_failure(exc, "post video", direct=direct) from None
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise sorted_failure(exc, "post video", direct=direct) from None
        return message.id

    async def _send_text(
        self,
        channel: discord.abc.Messageable,
        text: str,
        nonce: str,
        job: Job,
        *,
        direct: bool = False,
        view: discord.ui.View | None = None,
    ) -> int:
        try:
            message = await self.outbox.post(
                lane_of(channel, job),
                lambda: channel.send(
                    text,
                    nonce=nonce,
                    view=view or discord.utils.MISSING,
                    allowed_mentions=mentions(job),
                ),
            )
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise sorted_failure(exc, "post link", direct=direct) from None
        return message.id

    async def find_delivery(self, job: Job) -> int | None:
        """The bot's earlier post of this job, searched from the job's card onward.

        The whole window is read (page by page, oldest first), not the last 100
        messages, so a busy channel cannot hide it. A channel that is gone holds
        nothing: then the member's direct messages are searched, where a lost
        channel's delivery goes. Any other failure raises PostFailed.
        """
        try:
            return await self._search(self._results(job), job)
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            if not (isinstance(exc, discord.HTTPException) and exc.code == UNKNOWN_CHANNEL):
                raise sorted_failure(exc, "history") from None
        log.info("channel of job %d is gone; looking in the member's DMs", job.id)
        channel = await self._direct_channel(job)
        try:
            return await self._search(channel, job)
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise sorted_failure(exc, "DM history", direct=True) from None

    async def _search(self, channel: discord.abc.Messageable, job: Job) -> int | None:
        marker = f"(job #{job.id})"
        me = self.client.user
        read = 0
        async for message in self._window(channel, job):
            if me is not None and message.author.id == me.id and marker in message.content:
                return message.id
            read += 1
        if read >= HISTORY_SCAN_LIMIT:
            raise PostFailed(f"history: more than {HISTORY_SCAN_LIMIT} messages to read")
        return None

    def _window(self, channel: discord.abc.Messageable, job: Job) -> AsyncIterator[discord.Message]:
        """Every message since the job's card (or its creation), oldest first."""
        if job.status_message_id is not None:
            after: discord.abc.Snowflake = discord.Object(job.status_message_id)
        else:
            start = to_datetime(job.created_at) - dt.timedelta(seconds=CLOCK_MARGIN)
            after = discord.Object(discord.utils.time_snowflake(start))
        return channel.history(limit=HISTORY_SCAN_LIMIT, after=after, oldest_first=True)

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        guild = self.client.get_guild(guild_id)
        return guild.filesize_limit if guild else None

    async def tell_member(self, job: Job, rule: str, params: Mapping[str, object]) -> bool:
        """A direct message to the job's member, in their language; never raises."""
        text = render(rule, job.locale, **params)
        try:
            channel = await self._direct_channel(job)
            await self.outbox.post(
                lane_of(channel, job),
                lambda: channel.send(text, allowed_mentions=discord.AllowedMentions.none()),
            )
        except (discord.DiscordException, PostFailed, *NETWORK_ERRORS) as exc:
            log.info("could not tell the member of %s (%s): %r", job.log_context(), rule, exc)
            return False
        return True

    async def admin_notice(self, notice: AdminNotice) -> None:
        guild = self.client.get_guild(notice.guild_id)
        # The notice channel, else the log channel; never a public channel members read.
        channel_id = notice.channel_id or notice.log_channel_id
        if channel_id is None:
            log.warning(
                "admin notice %s for guild %d: no notice or log channel set; "
                "set one with /hailuo-admin",
                notice.rule,
                notice.guild_id,
            )
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
