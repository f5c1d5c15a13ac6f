"""``/hailuo-admin`` through the real bot and the Discord simulator, and its usage chart."""

from __future__ import annotations

import io
from datetime import date, timedelta

import discord
import pytest
from PIL import Image

from cogs.admin import usage_chart
from hailuo.jobs.desk import UsageReport
from tests.discord_sim import (
    EVERYONE_PERMISSIONS,
    DiscordSimulator,
    SimChannel,
    SimGuild,
    SimInteraction,
    SimRole,
)
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import ADMIN_PERMISSIONS, MANAGE_GUILD, said, user

pytestmark = pytest.mark.timeout(60)

ADMINISTRATOR = discord.Permissions(administrator=True).value
MEMBER = 4_000_001


@pytest.fixture
def sim_setup() -> SimSetup:
    guild = SimGuild(
        channels=[SimChannel("general"), SimChannel("admins")], roles=[SimRole("Creators")]
    )
    return SimSetup.held([guild])


async def admin(
    sim: DiscordSimulator,
    sub: str,
    options: dict[str, object] | None = None,
    *,
    permissions: int = ADMIN_PERMISSIONS,
    **kw: object,
) -> SimInteraction:
    inter = await sim.send_slash(
        ["hailuo-admin", sub],
        options,
        permissions=permissions,
        **kw,  # type: ignore[arg-type]
    )
    await inter.wait_response()
    assert inter.ephemeral, inter.response_data
    return inter


async def test_the_group_is_hidden_by_default_and_checked_at_run_time(
    discord_sim, minimax, env
) -> None:
    guild_id = discord_sim.guilds[0].id
    async with running_bot(env) as app:
        synced = discord_sim.command_syncs[-1].json
        group = next(c for c in synced if c["name"] == "hailuo-admin")
        assert int(group["default_member_permissions"]) == MANAGE_GUILD
        # A server that overrode the default (the simulator delivers to anyone): still refused.
        for sub, options in [
            ("budget", {"daily": 1}),
            ("grant", {"member": user(MEMBER), "credits": 50}),
            ("usage", None),
        ]:
            inter = await admin(discord_sim, sub, options, permissions=EVERYONE_PERMISSIONS)
            assert said(inter) == "Only members with the Manage Server permission can use this."
        policy = await app.bot.desk.policy(guild_id)
        assert policy.daily_budget is None
        assert (await app.bot.desk.balance(guild_id, MEMBER)).remaining == 10
        # Manage Server, or Administrator, may.
        inter = await admin(discord_sim, "budget", {"daily": 30})
        assert said(inter) == "Server budget: 30 a day, none a month."
        inter = await admin(discord_sim, "budget", {"monthly": 900}, permissions=ADMINISTRATOR)
        assert said(inter) == "Server budget: 30 a day, 900 a month."


async def test_admins_set_the_policy_with_commands(discord_sim, minimax, env) -> None:
    guild = discord_sim.guilds[0]
    creators = guild.roles[0]
    admins = guild.channels[1]
    async with running_bot(env) as app:
        inter = await admin(discord_sim, "allowance", {"credits": 4, "period": "week"})
        assert said(inter) == "Each member now gets 4 credits a week (renewing on Mondays)."
        inter = await admin(
            discord_sim, "tier", {"role": {"type": 8, "value": str(creators.id)}, "credits": 12}
        )
        assert said(inter) == f"Members with <@&{creators.id}> now get 12 credits per period."
        inter = await admin(discord_sim, "timezone", {"name": "Mars/Base"})
        assert "Mars/Base is not a time zone name" in said(inter)
        inter = await admin(discord_sim, "timezone", {"name": "Europe/Paris"})
        assert said(inter).startswith(
            "Allowances and budgets now renew at midnight in Europe/Paris"
        )
        inter = await admin(discord_sim, "limits", {"member_jobs": 3, "cooldown": 30})
        assert said(inter) == (
            "Jobs in flight: at most 3 per member and 50 for the server; cool-down: 30 s."
        )
        inter = await admin(discord_sim, "limits", {"server_jobs": 0})
        assert said(inter) == "A job cap must be from 1 to 1000, not 0."
        inter = await admin(
            discord_sim, "cost", {"resolution": "768P", "duration": 10, "credits": 3}
        )
        assert said(inter) == "MiniMax-Hailuo-02 768P 10 s now costs 3 credits here."
        inter = await admin(
            discord_sim, "cost", {"resolution": "1080P", "duration": 10, "credits": 3}
        )
        assert "MiniMax-Hailuo-02 has no 1080P 10 s videos" in said(inter)
        inter = await admin(discord_sim, "channel", channel_id=admins.id)
        assert said(inter) == f"Budget notices now go to <#{admins.id}>."

        text = said(await admin(discord_sim, "policy"))
        for words in [
            "Allowance: 4 credits a week (renewing on Mondays) (time zone Europe/Paris)",
            f"Tiers: <@&{creators.id}> 12",
            "Jobs in flight: 3 per member, 50 for the server. Cool-down: 30 s",
            f"Notices: <#{admins.id}>",
            "768P 10 s = 3",
        ]:
            assert words in text
        policy = await app.bot.desk.policy(guild.id)
        assert policy.allowance_for([creators.id]) == 12 and policy.notice_channel_id == admins.id
        audit = await app.bot.services.db.fetch_all("SELECT action FROM audit")
        assert len(audit) == 6 and {r[0] for r in audit} == {"setting_changed"}


async def test_grant_take_reset_block_and_unblock(discord_sim, minimax, env) -> None:
    guild_id = discord_sim.guilds[0].id
    async with running_bot(env) as app:
        inter = await admin(discord_sim, "grant", {"member": user(MEMBER), "credits": 5})
        assert said(inter) == f"<@{MEMBER}> got 5 credits; 15 left this period."
        inter = await admin(discord_sim, "take", {"member": user(MEMBER), "credits": 20})
        assert said(inter) == "Cannot take back 20 credits: the member has only 15 left."
        inter = await admin(
            discord_sim, "take", {"member": user(MEMBER), "credits": 15, "reason": "abuse"}
        )
        assert said(inter) == f"15 credits taken back from <@{MEMBER}>; 0 left this period."
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "x"}, user_id=MEMBER)
        await inter.wait_response()
        assert inter.ephemeral and "you have 0 left of 10" in said(inter)
        inter = await admin(discord_sim, "reset", {"member": user(MEMBER)})
        assert said(inter) == f"<@{MEMBER}> is back to 10 credits this period."

        inter = await admin(discord_sim, "block", {"member": user(MEMBER), "reason": "spam"})
        assert said(inter) == f"<@{MEMBER}> can no longer make videos here."
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "x"}, user_id=MEMBER)
        await inter.wait_response()
        assert inter.ephemeral and "blocked from making videos" in said(inter)
        inter = await admin(discord_sim, "unblock", {"member": user(MEMBER)})
        assert said(inter) == f"<@{MEMBER}> can make videos here again."
        inter = await admin(discord_sim, "unblock", {"member": user(MEMBER)})
        assert said(inter) == f"<@{MEMBER}> was not blocked."

        entries = await app.bot.desk.ledger.recent(guild_id, MEMBER, limit=10)
        assert [(e.kind.value, e.delta, e.reason) for e in reversed(entries)] == [
            ("grant", 5, ""),
            ("grant", -15, "abuse"),
            ("reset", 10, "reset by an admin"),
        ]


async def test_usage_attaches_a_png_chart_and_names_the_top_members(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env):
        for member, resolution in [(MEMBER, "1080P"), (MEMBER + 1, "768P")]:
            inter = await discord_sim.send_slash(
                ["hailuo", "text"], {"prompt": "x", "resolution": resolution}, user_id=member
            )
            await inter.wait_response()
            assert not inter.ephemeral
        inter = await admin(discord_sim, "usage")
    text = said(inter)
    assert "Spent today: 3 (budget: none). This month: 3 (budget: none)." in text
    assert f"1. <@{MEMBER}> · 2 credits\n2. <@{MEMBER + 1}> · 1 credit" in text
    assert [f.filename for f in inter.response_files] == ["usage.png", "money.png"]
    image = Image.open(io.BytesIO(inter.response_files[0].data))
    assert (image.format, image.size) == ("PNG", (900, 360))


def test_the_chart_draws_bars_and_the_budget_line() -> None:
    first = date(2026, 10, 28)
    days = [(first + timedelta(days=i), (i * 7) % 13) for i in range(30)]
    report = UsageReport(
        "UTC", days, [(1, 10)], today=5, month=50, daily_budget=12, monthly_budget=None
    )
    image = Image.open(io.BytesIO(usage_chart(report, "Credits spent per day")))
    colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=100_000) or []}
    assert (0x58, 0x65, 0xF2) in colours  # the bars
    assert (0xD8, 0x3C, 0x3E) in colours  # the budget line
    empty = UsageReport("UTC", [(first, 0)] * 30, [], 0, 0, None, None)
    assert usage_chart(empty, "nothing").startswith(b"\x89PNG")
