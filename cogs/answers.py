"""A command's first answer, when it made a job: what to do if it fails, and after.

``/hailuo text`` and ``/hailuo animate`` answer with a card before the job exists and
create the job with the card's ids; a request that does not become a job has its card
withdrawn (``withdraw_card``), and one that does has it filled in (``edit_card``).
The Re-roll confirm creates the job and its reservation
before it answers, so an answer Discord refuses (its 3 seconds passed) would
leave the member with "did not respond" and a charged job they will ask for
again. Refused: the job is withdrawn and refunded (``JobControls.withdraw_unanswered``).
Unknown (a 5xx, a timeout) or already on its way to the provider: the job goes on
and a new card in its channel mentions the member.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from cogs.notifier import DiscordNotifier
from hailuo.jobs.notify import StatusView
from hailuo.model.job import Job

if TYPE_CHECKING:
    from bot import HailuoBot

log = logging.getLogger(__name__)


def answer_refused(error: BaseException) -> bool:
    """Whether Discord certainly did not show a first answer: it refused it (404 10062,
    the 3 seconds had passed; or a 4xx about the answer itself). A 5xx, a timeout or a
    dropped connection leaves it unknown, and 40060 means an answer was shown already."""
    return (
        isinstance(error, discord.HTTPException)
        and 400 <= error.status < 500
        and error.code != 40060
    )


async def first_answer_failed(bot: HailuoBot, job: Job, error: BaseException) -> None:
    """The job exists and is reserved, but its first answer failed.

    Refused by Discord: the member saw "did not respond" and will ask again, so the job
    is withdrawn and refunded (one request, one charge). Unknown, or already moving on
    to the provider: the job goes on and a new card in the channel tells the member.
    """
    if answer_refused(error):
        code = getattr(error, "code", None)
        log.warning("first answer of job %d refused (code %s): withdrawing it", job.id, code)
        if await bot.services.controls.withdraw_unanswered(job.id) is not None:
            return
    else:
        log.warning("first answer of job %d: outcome unknown (%s)", job.id, type(error).__name__)
    fresh = await bot.desk.get(job.id) or job
    notifier = bot.services.notifier
    if isinstance(notifier, DiscordNotifier):
        await notifier.post_card(fresh)


async def catch_up(bot: HailuoBot, job: Job) -> None:
    """Show on the card what the job became while its first answer was on its way (the
    worker found no card to edit then)."""
    fresh = await bot.desk.get(job.id)
    if fresh is not None and fresh.status is not job.status and fresh.status_message_id:
        await bot.services.notifier.show_status(StatusView(job=fresh))


async def withdraw_card(bot: HailuoBot, channel_id: int, message_id: int | None) -> None:
    """Delete the status card of a request that did not become a job."""
    if message_id is None:
        return
    try:
        await bot.get_partial_messageable(channel_id).get_partial_message(message_id).delete()
    except discord.HTTPException as exc:
        log.warning("could not delete status card %s: %s", message_id, exc.status)


async def edit_card(
    bot: HailuoBot,
    channel_id: int,
    message_id: int,
    embed: discord.Embed,
    view: discord.ui.View | None = None,
) -> None:
    """Show ``embed`` on a card through its channel (best effort: logged, never raised)."""
    try:
        await (
            bot.get_partial_messageable(channel_id)
            .get_partial_message(message_id)
            .edit(embed=embed, view=view)
        )
    except discord.HTTPException as exc:
        log.warning("could not edit status card %s: %s", message_id, exc.status)
