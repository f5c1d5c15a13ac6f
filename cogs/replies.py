"""How a result reaches its member (``/hailuo settings``) and is tied to its card.

A result pings its member only in "mention" mode; "dm" sends a direct message with a
link to the post instead (or, when the member's DMs are closed, a mention in the channel
that says so), "quiet" says nothing more. In the channel the video replies
to its card; in a thread started from the card it needs no reply.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from cogs.faults import DM_REFUSED_CODES, lane_of
from cogs.render import message_url
from hailuo.i18n.messages import render
from hailuo.jobs.notify import PostFailed
from hailuo.model.job import Job

if TYPE_CHECKING:
    from cogs.notifier import DiscordNotifier

log = logging.getLogger(__name__)


def mentions(job: Job) -> discord.AllowedMentions:
    """Whom a result's post may ping: the member, only if they chose "mention"."""
    if job.notify != "mention":
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(users=[discord.Object(job.user_id)])


def card_reference(job: Job) -> discord.MessageReference | None:
    """The delivery replies to the job's card (so the two are tied together in the channel);
    a card deleted meanwhile does not stop the post (``fail_if_not_exists=False``)."""
    if job.status_message_id is None:
        return None
    return discord.MessageReference(
        message_id=job.status_message_id,
        channel_id=job.channel_id,
        guild_id=job.guild_id,
        fail_if_not_exists=False,
    )


async def dm_notice(notifier: DiscordNotifier, job: Job, message_id: int) -> None:
    """A member who asked to be told by DM gets a link to the post (best effort: the post
    is the delivery; an outage only costs the notice). A member whose DMs are closed is
    told in the channel instead, once, with a mention: they asked to be told."""
    if job.notify != "dm":
        return
    url = message_url(job.guild_id, job.results_channel_id, message_id)
    text = render("delivery.dm_notice", job.locale, job_id=job.id, url=url)
    try:
        channel = await notifier.client.create_dm(discord.Object(job.user_id))
        await notifier.outbox.post(
            channel.id,
            lambda: channel.send(
                text, nonce=f"hailuo-{job.id}-n", allowed_mentions=discord.AllowedMentions.none()
            ),
        )
    except discord.HTTPException as exc:
        if exc.code in DM_REFUSED_CODES:
            await dm_closed_notice(notifier, job, message_id)
        else:
            log.info("job=%d: the DM notice was not sent (%s %s)", job.id, exc.status, exc.code)
    except (discord.DiscordException, PostFailed, OSError, TimeoutError) as exc:
        log.info("job=%d: the DM notice was not sent (%s)", job.id, type(exc).__name__)


async def dm_closed_notice(notifier: DiscordNotifier, job: Job, message_id: int) -> None:
    """The DM fallback: a reply to the result post that mentions the member and says their
    DMs are closed. Once per job: its nonce is the job's, so a retry posts nothing twice."""
    text = render("delivery.dm_closed", job.locale, user_id=job.user_id, job_id=job.id)
    channel = notifier.client.get_partial_messageable(job.results_channel_id, guild_id=job.guild_id)
    reference = discord.MessageReference(
        message_id=message_id,
        channel_id=job.results_channel_id,
        guild_id=job.guild_id,
        fail_if_not_exists=False,
    )
    member = discord.AllowedMentions(users=[discord.Object(job.user_id)])
    try:
        await notifier.outbox.post(
            lane_of(channel, job),
            lambda: channel.send(
                text, nonce=f"hailuo-{job.id}-d", reference=reference, allowed_mentions=member
            ),
        )
    except (discord.DiscordException, OSError, TimeoutError) as exc:
        log.info("job=%d: the closed-DM notice was not sent (%s)", job.id, type(exc).__name__)
