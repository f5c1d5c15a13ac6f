"""A command's first answer, when it makes a job: in which order, what if it fails, and after.

``/hailuo text`` (``answer_and_create``) creates the job first and answers with its
card when nothing else is being created or answered in this process: the one write
takes milliseconds then, and a refusal under it is the ephemeral answer itself. When
other requests are on their way (a burst), each would wait behind the others' writes,
so the command answers at once with a card "checking your request" and creates the job
with that card's ids after; a rule broken under the write then withdraws the card
(``withdraw_card``) and tells the member privately with the rule, nothing reserved.
``/hailuo animate`` always answers first (its card checks the image).

The Re-roll confirm, and ``/hailuo text`` when it creates first, make the job and its
reservation before they answer, so an answer Discord refuses (its 3 seconds passed) would
leave the member with "did not respond" and a charged job they will ask for
again. Refused: the job is withdrawn and refunded (``JobControls.withdraw_unanswered``).
Unknown (a 5xx, a timeout) or already on its way to the provider: the job goes on
and a new card in its channel mentions the member.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import discord

from cogs.controls import controls_view
from cogs.errors import answer_privately, describe
from cogs.notifier import DiscordNotifier
from cogs.render import checking_embed, status_embed
from hailuo.jobs.desk import JobRequest
from hailuo.jobs.notify import StatusView
from hailuo.model.errors import HailuoError
from hailuo.model.job import Job
from hailuo.moderation.gating import Screening

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


async def answer_and_create(
    bot: HailuoBot,
    interaction: discord.Interaction,
    request: JobRequest,
    screened: Screening,
    started: float,
) -> Job | None:
    """Create the job and answer with its card, in the order the moment allows; the job,
    or None when it was not made or its answer failed (the member was told)."""
    answers = bot.services.first_answers
    if bot.desk.creating or answers.writes_after or answers.others_answering(interaction.id):
        # Others are on their way: this answer would wait behind their writes.
        return await _answer_then_create(bot, interaction, request, screened, started)
    answers.begin(interaction.id)  # before the job exists: no card can be posted for it
    try:
        job = await bot.desk.create(request, screened)
        answers.answering(interaction.id)
        try:
            callback = await interaction.response.send_message(
                embed=status_embed(job), view=controls_view(job)
            )
        except Exception as exc:
            answers.end(interaction.id)
            await first_answer_failed(bot, job, exc)
            return None
        finally:
            answers.answered(interaction.id)
        bot.metrics.interaction_answered(time.monotonic() - started)
        if callback.message_id is not None:
            await bot.desk.attach_card(job.id, request.channel_id, callback.message_id)
            job = dataclasses.replace(job, status_message_id=callback.message_id)
            # A tick between the create and now found no card to edit (its place in line
            # went nowhere): its next look draws the card.
            redraw(bot, job)
    finally:
        answers.end(interaction.id)
    return job


async def _answer_then_create(
    bot: HailuoBot,
    interaction: discord.Interaction,
    request: JobRequest,
    screened: Screening,
    started: float,
) -> Job | None:
    """Answer at once with a card "checking your request", then create the job with its ids."""
    locale = request.locale
    answers = bot.services.first_answers
    answers.answering(interaction.id)
    answers.writes_after += 1  # from now until written: a command coming now answers first too
    try:
        try:
            callback = await interaction.response.send_message(
                embed=checking_embed(locale, "status.checking_request")
            )
        finally:
            answers.answered(interaction.id)
        bot.metrics.interaction_answered(time.monotonic() - started)
        card = callback.message_id
        request = dataclasses.replace(request, status_message_id=card)
        await answers.quiet()  # the burst's other answers first: nothing waits on this write
        try:
            job = await bot.desk.create(request, screened)
        except Exception as exc:
            await refused_after_answer(bot, interaction, request.channel_id, card, exc)
            return None
    finally:
        answers.writes_after -= 1
    try:  # the interaction's own webhook: no channel's edit limit between a burst's cards
        await interaction.edit_original_response(embed=status_embed(job), view=controls_view(job))
    except Exception as exc:  # the job exists and goes on: its card is best effort
        log.warning("could not fill in the card of job %d: %s", job.id, type(exc).__name__)
        if card is not None:
            await edit_card(bot, request.channel_id, card, status_embed(job), controls_view(job))
    # The worker may have shown the job (its place in line) before this filled the card in:
    # that edit is gone, so its next look draws the card again.
    redraw(bot, job)
    return job


def redraw(bot: HailuoBot, job: Job) -> None:
    """Have the worker draw the job's card at its next look, even if nothing changed since
    it last showed the job (that showing never reached this card, or was overwritten)."""
    bot.services.worker.cards.stale(job.id)
    bot.desk.wake()


async def catch_up(bot: HailuoBot, job: Job) -> None:
    """Show on the card what the job became while its first answer was on its way (the
    worker found no card to edit then)."""
    fresh = await bot.desk.get(job.id)
    if fresh is not None and fresh.status is not job.status and fresh.status_message_id:
        await bot.services.notifier.show_status(StatusView(job=fresh))


async def refused_after_answer(
    bot: HailuoBot,
    interaction: discord.Interaction,
    channel_id: int,
    card: int | None,
    exc: Exception,
) -> None:
    """A request answered with a "checking" card whose checks or create then raised: the
    card is withdrawn unless a job was made, a broken rule is told privately, and a fault
    is raised again for the command tree's error handler (which says what became of the
    credits)."""
    if isinstance(exc, HailuoError):
        await withdraw_card(bot, channel_id, card)
        await answer_privately(interaction, describe(exc, str(interaction.locale)))
        return
    if await bot.desk.made_by(interaction.id) is None:
        await withdraw_card(bot, channel_id, card)
    raise exc


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
    """Show ``embed`` on a card through its channel (best effort: logged, never raised).

    In the channel's lane, awaited like a post: ahead of the worker's later edits of the
    same card, and counted against the channel's limits with everything else it sends."""
    card = bot.get_partial_messageable(channel_id).get_partial_message(message_id)
    try:
        await bot.outbox.post(channel_id, lambda: card.edit(embed=embed, view=view))
    except discord.DiscordException as exc:
        log.warning("could not edit status card %s: %s", message_id, exc)
