"""Moderator status comes from the job's own channel (issue 11, finding 4).

``pytest -k moderator_channel``: Manage Messages granted in one channel only (an
overwrite, as a server gives helpers of an art channel) must not let a member cancel
the jobs of every channel with ``/hailuo cancel job:N`` typed there. The presser's
permissions are read in the job's channel (the cached server's roles and overwrites);
the server's moderator role still counts everywhere.
"""

from __future__ import annotations

import time

import discord
import pytest

from storage.moderation import ModerationSettingsRepository
from tests.discord_sim import SimChannel, SimGuild, SimRole
from tests.e2e import SimSetup, private_text, running_bot

pytestmark = pytest.mark.timeout(60)

MEMBER, HELPER, MOD, ADMIN = 9001, 9002, 9003, 9004
MANAGE = discord.Permissions(manage_messages=True).value


@pytest.fixture
def sim_setup() -> SimSetup:
    guild = SimGuild(
        channels=[SimChannel("general"), SimChannel("art")],
        roles=[SimRole("Art helpers"), SimRole("Moderators"), SimRole("Cleaners", MANAGE)],
    )
    helpers = guild.roles[0]
    # Manage Messages for the art helpers in #art only.
    guild.channels[1].permission_overwrites = [
        {"id": str(helpers.id), "type": 0, "allow": str(MANAGE), "deny": "0"}
    ]
    return SimSetup.held([guild])


async def test_moderator_channel_manage_messages_elsewhere_cannot_cancel(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    general, art = guild.channels
    helpers, mods, cleaners = (role.id for role in guild.roles)
    async with running_bot(env) as app:
        await ModerationSettingsRepository(app.bot.services.db).update(
            guild.id, {"moderator_role_id": mods}, actor_id=ADMIN, now=time.time()
        )
        ask = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "mine"}, user_id=MEMBER)
        await ask.wait_response()
        job = (await app.bot.desk.jobs.recent_for_member(guild.id, MEMBER, 1))[0]
        assert job.channel_id == general.id

        # The helper types in #art, where Discord says they have Manage Messages.
        typed = await discord_sim.send_slash(
            ["hailuo", "cancel"],
            {"job": job.id},
            user_id=HELPER,
            channel_id=art.id,
            member_roles=[helpers],
        )
        assert int(typed.payload["member"]["permissions"]) & MANAGE  # where they typed
        assert f"Only the member who asked for video #{job.id}" in await private_text(typed)
        fresh = await app.bot.desk.jobs.get(job.id)
        assert fresh is not None and not fresh.status.terminal
        ledger = await app.bot.desk.ledger.for_job(job.id)
        assert [e.kind.value for e in ledger] == ["reserve"]

        # Manage Messages in the job's own channel (a role with it server-wide) does count,
        # wherever the command is typed; so does the server's moderator role.
        cleaner = await discord_sim.send_slash(
            ["hailuo", "cancel"],
            {"job": job.id},
            user_id=MOD,
            channel_id=art.id,
            member_roles=[cleaners],
        )
        answer = await private_text(cleaner)
        assert "Only the member" not in answer and f"#{job.id}" in answer

        second = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "another"}, user_id=MEMBER
        )
        await second.wait_response()
        other = (await app.bot.desk.jobs.recent_for_member(guild.id, MEMBER, 1))[0]
        by_role = await discord_sim.send_slash(
            ["hailuo", "cancel"],
            {"job": other.id},
            user_id=MOD + 1,
            channel_id=art.id,
            member_roles=[mods],
        )
        assert "Only the member" not in await private_text(by_role)
