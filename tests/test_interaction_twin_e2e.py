"""A missed first answer leaves no charged twin (issue 11, finding 6): ``-k interaction_twin``.

``/hailuo text`` commits the job and its reservation before it answers. When Discord
refuses that answer (the 3 seconds passed: 404 10062), the member sees "did not respond"
and asks again: the first job is withdrawn and refunded, so one request costs once. When
the answer's fate is unknown the job goes on and a new card in the channel tells the
member. One interaction id makes at most one job (a unique key, migration 004), whatever
Discord delivers twice. The real bot against the Discord and MiniMax simulators.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import discord
import pytest

from bot import App
from cogs.answers import answer_refused
from hailuo.jobs.cards import FIRST_ANSWER_MISSED
from hailuo.model.status import JobStatus
from tests.discord_sim import DiscordSimulator, SimInteraction
from tests.e2e import SimSetup, channel, running_bot

pytestmark = pytest.mark.timeout(60)

MEMBER = 7101
CALLBACK = r"^/interactions/\d+/[^/]+/callback$"


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held()  # tasks run until completed: jobs stay in flight


async def handled(inter: SimInteraction) -> None:
    """Wait until the bot finished handling the command (its invoker task), not a time."""
    await inter.wait_response()
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "CommandTree-invoker"]
    await asyncio.gather(*tasks, return_exceptions=True)


async def member_jobs(app: App, sim: DiscordSimulator):
    return await app.bot.desk.jobs.recent_for_member(sim.guilds[0].id, MEMBER, 20)


async def ledger(app: App, job_id: int) -> list[tuple[str, int]]:
    return [(e.kind.value, e.delta) for e in await app.bot.desk.ledger.for_job(job_id)]


def error(status: int, code: int) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="simulated")
    return discord.HTTPException(response, {"code": code, "message": "simulated"})  # type: ignore[arg-type]


def test_interaction_twin_which_failures_mean_the_answer_was_not_shown() -> None:
    assert answer_refused(error(404, 10062))  # the 3 seconds passed
    assert answer_refused(error(400, 50035))  # the answer itself was refused
    assert not answer_refused(error(400, 40060))  # some answer was shown already
    assert not answer_refused(error(503, 0))  # unknown: it may have landed
    assert not answer_refused(TimeoutError())
    assert not answer_refused(ConnectionResetError())


async def test_interaction_twin_refused_first_answer_is_withdrawn_and_the_retry_pays_once(
    discord_sim, minimax, env
) -> None:
    room = channel(discord_sim)
    async with running_bot(env) as app:
        discord_sim.inject_fault(
            "POST",
            CALLBACK,
            status=404,
            body={"code": 10062, "message": "Unknown interaction"},
        )
        late = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a fox"}, user_id=MEMBER)
        await handled(late)
        assert late.callbacks[0].status == 404 and not late.acknowledged
        (first,) = await member_jobs(app, discord_sim)
        assert first.status is JobStatus.CANCELLED and first.failure_rule == FIRST_ANSWER_MISSED
        assert await ledger(app, first.id) == [("reserve", -1), ("refund", 1)]
        await app.bot.services.approvals.settled()  # type: ignore[union-attr]
        assert room.bot_messages() == []  # nothing announced about a request never shown

        # The member sees "did not respond" and asks again: one job, one reservation.
        retry = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a fox"}, user_id=MEMBER
        )
        await handled(retry)
        assert not retry.ephemeral and retry.original_message is not None
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, MEMBER)
        assert (balance.reserved, balance.remaining) == (1, 9)
        jobs = await member_jobs(app, discord_sim)
        assert [j.status.terminal for j in jobs] == [False, True]
    assert len(minimax.submits) == 1


async def test_interaction_twin_unknown_first_answer_keeps_the_job_and_posts_a_card(
    discord_sim, minimax, env
) -> None:
    room = channel(discord_sim)
    async with running_bot(env) as app:
        # Some answer was shown (40060): the member may have seen it; the job goes on.
        discord_sim.inject_fault(
            "POST", CALLBACK, status=400, body={"code": 40060, "message": "already acknowledged"}
        )
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a owl"}, user_id=MEMBER
        )
        await handled(inter)
        (job,) = await member_jobs(app, discord_sim)
        assert not job.status.terminal
        assert job.status_message_id is not None
        (card,) = room.bot_messages()
        assert card.id == job.status_message_id
        assert f"<@{MEMBER}>" in card.content and f"#{job.id}" in card.content
        assert f"Hailuo video #{job.id}" in str(card.embeds)
        assert await ledger(app, job.id) == [("reserve", -1)]


async def test_interaction_twin_a_redelivered_interaction_makes_one_job(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a heron"}, user_id=MEMBER
        )
        await handled(inter)
        await discord_sim.redeliver(inter)  # the same INTERACTION_CREATE, once more
        await discord_sim.wait_for(lambda: len(inter.callbacks) >= 2)
        await handled(inter)
        assert inter.callbacks[1].code == 40060  # the twin's answer came too late anyway
        (job,) = await member_jobs(app, discord_sim)
        assert job.interaction_id == inter.id
        assert await ledger(app, job.id) == [("reserve", -1)]
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, MEMBER)
        assert balance.reserved == 1
