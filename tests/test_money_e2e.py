"""The money feature end to end: the real bot and discord.py client against the simulators.

The MiniMax simulator holds every task (``polls_until_done=None``), so nothing is
delivered or settled while a test runs and every reservation stays in flight.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from hailuo.money.quotas import AllowancePeriod
from storage.ledger import LedgerEntryKind
from tests.discord_sim import DiscordSimulator, SimChannel, SimGuild, SimInteraction, SimRole
from tests.e2e import SimSetup, all_settled, private_reply, running_bot

pytestmark = pytest.mark.timeout(60)

ADMIN = 1


@pytest.fixture
def sim_setup() -> SimSetup:
    guild = SimGuild(
        channels=[SimChannel("general"), SimChannel("admins")],
        roles=[SimRole("Creators"), SimRole("Server Booster")],
    )
    return SimSetup.held([guild])


async def private_text(sim: DiscordSimulator, inter: SimInteraction) -> str:
    await inter.wait_response()
    assert inter.ephemeral, inter.response_data
    assert inter.response_data is not None
    return str(inter.response_data["content"])


async def test_a_burst_of_200_requests_never_overdraws(discord_sim, minimax, env) -> None:
    guild = discord_sim.guilds[0]
    admins = guild.channels[1]
    members = [900_000 + n for n in range(20)]
    async with running_bot(env) as app:
        policies = app.bot.services.policies
        assert policies is not None
        await policies.set_allowance(guild.id, 3, AllowancePeriod.DAY, ADMIN)
        await policies.set_limits(guild.id, ADMIN, member_jobs=10, server_jobs=500)
        await policies.set_budget(guild.id, ADMIN, daily=40, monthly=None)
        await policies.set_notice_channel(guild.id, admins.id, ADMIN)

        burst = await asyncio.gather(
            *(
                discord_sim.send_slash(
                    ["hailuo", "text"], {"prompt": f"clip {n}"}, user_id=members[n % 20]
                )
                for n in range(200)
            )
        )
        answers = await asyncio.gather(*(inter.wait_response(timeout=30) for inter in burst))
        # Every interaction was answered inside Discord's 3 seconds.
        assert [call.status for call in answers] == [200] * 200
        # A burst answers first and reserves after: a refusal then withdraws the card and
        # tells the member privately.
        await all_settled(discord_sim, burst, timeout=30)
        await app.bot.desk.notices_sent()
        accepted = [inter for inter in burst if private_reply(inter) is None]
        refused = [inter for inter in burst if private_reply(inter) is not None]
        assert len(accepted) == 40 and len(refused) == 160  # 20 × 3 credits > a budget of 40
        for inter in refused:
            text = str(private_reply(inter))
            assert "left of 3 today" in text or "budget for today cannot cover" in text, text
            assert inter.original_message is None or inter.original_message.deleted

        desk = app.bot.desk
        per_member = Counter(inter.user_id for inter in accepted)
        assert max(per_member.values()) <= 3
        for member in members:
            balance = await desk.balance(guild.id, member)
            assert balance.reserved == per_member[member] <= 3
            assert balance.remaining == 3 - per_member[member] >= 0
            entries = await desk.ledger.recent(guild.id, member, limit=50)
            assert sum(e.delta for e in entries) == -per_member[member]
            assert {e.kind for e in entries} <= {LedgerEntryKind.RESERVE}
        report = await desk.usage(guild.id)
        assert report.today == 40 <= (report.daily_budget or 0)
        assert sum((await desk.jobs.count_by_status()).values()) == 40

    notices = [m.content for m in discord_sim.channel_messages(admins.id)]
    assert len(notices) == 2, notices
    assert "used 32 of its 40 credits for today (80 %)" in notices[0]
    assert "budget for today is used up (40 of 40" in notices[1]


async def test_a_creators_tier_and_the_quota_and_jobs_commands(discord_sim, minimax, env) -> None:
    guild = discord_sim.guilds[0]
    creators = guild.roles[0]
    async with running_bot(env) as app:
        policies = app.bot.services.policies
        assert policies is not None
        await policies.set_tier(guild.id, creators.id, 25, ADMIN)
        inter = await discord_sim.send_slash(
            ["hailuo", "text"],
            {"prompt": "a fox", "resolution": "1080P"},
            member_roles=[creators.id],
        )
        await inter.wait_response()
        assert not inter.ephemeral
        await app.bot.desk.grant(guild.id, inter.user_id, 4, actor_id=ADMIN, reason="contest")

        quota = await private_text(
            discord_sim,
            await discord_sim.send_slash(["hailuo", "quota"], member_roles=[creators.id]),
        )
        assert "**27** of 25 credits left today (2 held by videos in the making)" in quota
        assert "−2 held for video #1" in quota
        assert f"+4 granted by <@{ADMIN}> (contest)" in quota
        assert "MiniMax-Hailuo-02: 512P 6 s = 1" in quota

        # Without the role the member is back to the server's allowance.
        quota = await private_text(
            discord_sim, await discord_sim.send_slash(["hailuo", "quota"], member_roles=[])
        )
        assert "of 10 credits left today" in quota

        jobs = await private_text(discord_sim, await discord_sim.send_slash(["hailuo", "jobs"]))
        assert jobs.startswith("#1 · ") and "1080P 6 s · 2 credits" in jobs
        other = await private_text(
            discord_sim, await discord_sim.send_slash(["hailuo", "jobs"], user_id=4242)
        )
        assert other == "You have made no videos in this server yet."


async def test_a_blocked_member_is_told_privately_and_reserves_nothing(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    async with running_bot(env) as app:
        policies = app.bot.services.policies
        assert policies is not None
        member = discord_sim.default_user.id
        await policies.block(guild.id, member, ADMIN, "spam")
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat"})
        assert "blocked from making videos" in await private_text(discord_sim, inter)
        assert await app.bot.desk.jobs.count_by_status() == {}
        await policies.unblock(guild.id, member, ADMIN)
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat"})
        await inter.wait_response()
        assert not inter.ephemeral
