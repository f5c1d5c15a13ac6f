"""Money budgets send the 80 % and 100 % notices a credit budget sends (issue 15, item 8).

``pytest -k spend``: through the real bot, the Discord simulator and the MiniMax
simulator. The owner sets a price and a money budget with ``/hailuo-admin``; a video
that brings the day's estimated spend to 80 % tells the admins once, a video refused by
the full budget tells them 100 % once, and a second refusal the same day says nothing
more. The notices go to the notice channel if one is set, else to the log channel,
never to the public system channel; ``/hailuo-admin policy`` shows the money budgets.
"""

from __future__ import annotations

import time

import pytest

from hailuo.model.status import JobStatus
from storage.moderation import ModerationSettingsRepository
from tests.discord_sim import DiscordSimulator, SimChannel, SimGuild
from tests.e2e import SimSetup, private_answer, running_bot
from tests.moderation_e2e import said
from tests.sims.minimax import MiniMaxSimulator
from tests.test_admin import admin

pytestmark = pytest.mark.timeout(60)

ADMIN = 1


@pytest.fixture
def sim_setup() -> SimSetup:
    guild = SimGuild(channels=[SimChannel("general"), SimChannel("mod-log"), SimChannel("owners")])
    guild.system_channel_id = guild.channels[0].id  # the public channel Discord posts joins in
    return SimSetup([guild])


def texts(sim: DiscordSimulator, channel_id: int) -> list[str]:
    """What the channel's members read: its messages, not the private answers in it."""
    return [m.content for m in sim.channel_messages(channel_id) if m.content and not m.ephemeral]


async def ask(sim: DiscordSimulator, user_id: int) -> str | None:
    """``/hailuo text`` by ``user_id``: None when the card went up (a job), else the refusal."""
    inter = await sim.send_slash(["hailuo", "text"], {"prompt": "a cat"}, user_id=user_id)
    await inter.wait_response()
    if inter.ephemeral:
        return await private_answer(sim, inter)
    return None


async def test_spend_money_budget_notices_once_per_threshold_in_the_log_channel(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str]
) -> None:
    guild = discord_sim.guilds[0]
    general, log_room, _ = guild.channels
    async with running_bot(env) as app:
        await ModerationSettingsRepository(app.bot.services.db).update(
            guild.id, {"log_channel_id": log_room.id}, actor_id=ADMIN, now=time.time()
        )
        price = {"provider": "minimax", "resolution": "768P", "duration": 6, "usd": "0.28"}
        await admin(discord_sim, "price", price)
        done = await admin(discord_sim, "budget", {"daily_usd": "0.35"})
        assert "Server money budget: $0.35 a day, none a month." in said(done)
        policy = await admin(discord_sim, "policy")
        assert "Money budget: $0.35 a day, none a month" in said(policy), said(policy)

        # $0.28 of $0.35: 80 % reached, told once.
        assert await ask(discord_sim, 11) is None
        await app.bot.desk.notices_sent()
        notices = texts(discord_sim, log_room.id)
        assert len(notices) == 1, notices
        assert "spent about $0.28 of its $0.35 money budget for today (80 %" in notices[0]

        # $0.28 more does not fit: refused before anything is charged, 100 % told once...
        refusal = await ask(discord_sim, 12)
        assert refusal is not None and "money budget for today cannot cover" in refusal
        await app.bot.desk.notices_sent()
        # ...and a second refusal the same day tells nobody again.
        assert await ask(discord_sim, 13) is not None
        await app.bot.desk.notices_sent()
        jobs = await app.bot.desk.jobs.recent_for_member(guild.id, 12, 5)
    notices = texts(discord_sim, log_room.id)
    assert len(notices) == 2, notices
    assert "money budget for today is used up (about $0.28 of $0.35)" in notices[1]
    assert jobs == []  # the refused member has no job and no reservation
    public = texts(discord_sim, general.id)
    assert not any("budget" in text for text in public), public


async def test_spend_money_budget_notice_prefers_the_notice_channel(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str]
) -> None:
    guild = discord_sim.guilds[0]
    general, log_room, owners = guild.channels
    async with running_bot(env) as app:
        await ModerationSettingsRepository(app.bot.services.db).update(
            guild.id, {"log_channel_id": log_room.id}, actor_id=ADMIN, now=time.time()
        )
        await app.bot.services.policies.set_notice_channel(guild.id, owners.id, ADMIN)
        price = {"provider": "minimax", "resolution": "768P", "duration": 6, "usd": "0.28"}
        await admin(discord_sim, "price", price)
        # A daily money budget and a daily credit budget: the same day, each notifies on
        # its own (neither's notice stands for the other's).
        await admin(discord_sim, "budget", {"daily_usd": "0.28", "daily": 1})
        assert await ask(discord_sim, 21) is None
        await app.bot.desk.notices_sent()
        job = (await app.bot.desk.jobs.recent_for_member(guild.id, 21, 1))[0]
    assert job.status is not JobStatus.FAILED
    notices = texts(discord_sim, owners.id)
    # Credits 1 of 1 (80 % and 100 %), money $0.28 of $0.28 (80 % and 100 %).
    assert len(notices) == 4, notices
    assert sum("money budget for today" in text for text in notices) == 2, notices
    assert sum("(1 of 1 credits)" in text or "1 of its 1 credits" in text for text in notices) == 2
    assert texts(discord_sim, log_room.id) == []
    assert not any("budget" in text for text in texts(discord_sim, general.id))
