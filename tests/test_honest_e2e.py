"""Honest messages through the real bot and the Discord simulator (issue 15, item 4).

``pytest -k honest``: an empty provider account is posted once in the server's log channel
and the member's card tells the truth (the bot cannot reach its video service; refunded);
budget notices go to the notice channel or else the log channel, never to the public
system channel members read.
"""

from __future__ import annotations

import time

import pytest

from storage.moderation import ModerationSettingsRepository
from tests.discord_sim import SimChannel, SimGuild
from tests.e2e import SimSetup, card_shows, running_bot

pytestmark = pytest.mark.timeout(60)

ADMIN = 1


@pytest.fixture
def sim_setup() -> SimSetup:
    guild = SimGuild(channels=[SimChannel("general"), SimChannel("mod-log")])
    guild.system_channel_id = guild.channels[0].id  # the public channel Discord posts joins in
    return SimSetup([guild])


async def set_log_channel(app, guild_id: int, channel_id: int) -> None:
    await ModerationSettingsRepository(app.bot.services.db).update(
        guild_id, {"log_channel_id": channel_id}, actor_id=ADMIN, now=time.time()
    )


async def test_honest_empty_account_told_in_log_channel_and_card_says_the_truth(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    general, log_room = guild.channels
    minimax.inject("submit", "no_balance")
    async with running_bot(env) as app:
        await set_log_channel(app, guild.id, log_room.id)
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat surfing"})
        await inter.wait_response()
        card = inter.original_message
        await card_shows(discord_sim, card, "cannot reach its video service")
        await discord_sim.wait_for(
            lambda: [m for m in discord_sim.channel_messages(log_room.id) if m.content]
        )
        await app.bot.services.worker.drain()
        job = (await app.bot.desk.jobs.recent_for_member(guild.id, inter.user_id, 1))[0]
        ledger = await app.bot.desk.ledger.for_job(job.id)
    assert "1 credit refunded to you." in str(card.embeds)
    assert [e.kind.value for e in ledger] == ["reserve", "refund"]
    # the log channel also mirrors the audit row of the setting itself (an embed, no text)
    alerts = [m.content for m in discord_sim.channel_messages(log_room.id) if m.content]
    assert len(alerts) == 1 and "minimax account is out of balance" in alerts[0], alerts
    public = [m.content for m in discord_sim.channel_messages(general.id) if not m.ephemeral]
    assert not any("out of balance" in (text or "") for text in public)


async def test_honest_budget_notice_goes_to_the_log_channel_never_the_system_channel(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    general, log_room = guild.channels
    async with running_bot(env) as app:
        policies = app.bot.services.policies
        await policies.set_budget(guild.id, ADMIN, daily=1, monthly=None)
        first = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat"})
        await first.wait_response()
        await app.bot.desk.notices_sent()
        assert [m.content for m in discord_sim.channel_messages(log_room.id) if m.content] == []
        assert all(
            "budget" not in (m.content or "") for m in discord_sim.channel_messages(general.id)
        )

        await set_log_channel(app, guild.id, log_room.id)
        await policies.set_budget(guild.id, ADMIN, daily=0, monthly=2)
        second = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a dog"}, user_id=77)
        await second.wait_response()
        await app.bot.desk.notices_sent()
    notices = [m.content for m in discord_sim.channel_messages(log_room.id) if m.content]
    assert len(notices) == 2, notices  # 1 of 2 -> 2 of 2 crosses 80 % and 100 %
    assert "budget for this month is used up" in notices[1], notices
    assert all("budget" not in (m.content or "") for m in discord_sim.channel_messages(general.id))
