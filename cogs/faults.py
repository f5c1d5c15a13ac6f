"""Discord's answers to a post, sorted once into what the core can act on.

A channel lost for good (10003, 50001, 50013) is ``ChannelLost`` and the member is
then reached by a direct message; a member whose direct messages are closed (50007)
is ``DirectMessagesClosed``; anything else (a 429 past discord.py's own retries, a
5xx, a broken connection) is ``PostFailed``, retried later on the delivery's budget.
"""

from __future__ import annotations

import asyncio

import aiohttp
import discord

from hailuo.jobs.notify import ChannelLost, DirectMessagesClosed, PostFailed
from hailuo.model.job import Job

#: Discord's codes for a channel that can take no post, for good (Unknown Channel,
#: Missing Access, Missing Permissions).
UNKNOWN_CHANNEL = 10003
MISSING_PERMISSIONS = 50013
CHANNEL_LOST_CODES = frozenset({UNKNOWN_CHANNEL, 50001, MISSING_PERMISSIONS})
#: Cannot send messages to this user (direct messages closed), Unknown User.
DM_REFUSED_CODES = frozenset({50007, 10013})
#: Errors of the connection to Discord itself: a fault, retried later like a 5xx.
NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
MIB = 1024 * 1024


def megabytes(size: int) -> str:
    """Bytes as Discord counts an upload limit (MiB): one decimal, two digits under 1 MB."""
    mb = size / MIB
    return f"{mb:.1f}".removesuffix(".0") if mb >= 1 else f"{mb:.2g}"


def lane_of(channel: discord.abc.Messageable, job: Job) -> int:
    """The outbox lane of a send: the channel's own id (a DM channel has its own)."""
    return channel.id if isinstance(channel, discord.DMChannel) else job.channel_id


def sorted_failure(exc: Exception, what: str, *, direct: bool = False) -> PostFailed:
    """One Discord failure as the core's kind: lost for good, DMs closed, or retry later."""
    if isinstance(exc, discord.RateLimited):
        return PostFailed(f"{what}: rate limited", retry_after=exc.retry_after)
    if not isinstance(exc, discord.HTTPException):
        return PostFailed(f"{what}: {type(exc).__name__}")
    reason = f"{what}: HTTP {exc.status} code {exc.code}"
    if direct and (exc.code in DM_REFUSED_CODES or exc.code in CHANNEL_LOST_CODES):
        return DirectMessagesClosed(reason)
    if exc.code in CHANNEL_LOST_CODES:
        return ChannelLost(reason, permission_only=exc.code == MISSING_PERMISSIONS)
    return PostFailed(reason)
