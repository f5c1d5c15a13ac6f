"""Honest moderation through the real bot and the Discord simulator (issue 15, item 4).

``pytest -k honest``: a provider's content refusal is told to the member privately, with
the count and the threshold, the first time, not only once they are blocked; approval
cannot be turned on without the moderators' (log) channel, and a request is never posted
in the public channel of the job, even with approval switched on by ``HAILUO_APPROVAL``.
"""

from __future__ import annotations

import time

import pytest

from hailuo.model.moderation import ApprovalMode
from hailuo.model.status import JobStatus
from storage.moderation import ModerationSettingsRepository
from tests import media
from tests.discord_sim import SimAttachment
from tests.e2e import SimSetup, card_shows, running_bot
from tests.moderation_e2e import admin, channel, moderated_guild, said

pytestmark = pytest.mark.timeout(60)

MEMBER = 4321


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup([moderated_guild()])


async def test_honest_first_strike_is_told_privately_with_count_and_threshold(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    general = guild.channels[0]
    minimax.inject("submit", "sensitive_prompt")
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a cat surfing"}, user_id=MEMBER
        )
        await inter.wait_response()
        await card_shows(discord_sim, inter.original_message, "Failed")
        dm = discord_sim.dm_channel(MEMBER)
        told = await discord_sim.wait_for(lambda: discord_sim.channel_messages(dm.id))
        job = (await app.bot.desk.jobs.recent_for_member(guild.id, MEMBER, 1))[0]
    assert job.status is JobStatus.FAILED
    assert len(told) == 1
    text = told[0].content
    assert f"video #{job.id}" in text and "you have 1 of 3 within 7 days" in text, text
    public = [m.content or "" for m in discord_sim.channel_messages(general.id)]
    assert not any("strike" in t for t in public)


async def test_honest_approval_refused_without_a_moderator_channel(
    discord_sim, minimax, env
) -> None:
    log_room = discord_sim.guilds[0].channels[2]
    async with running_bot(env) as app:
        refused = await admin(discord_sim, "moderation", {"approval": "everyone"})
        assert said(refused).startswith("Approval needs a log channel first")
        settings = await app.bot.desk.gate.settings.get(discord_sim.guilds[0].id)
        assert settings.approval_mode is ApprovalMode.OFF
        done = await admin(
            discord_sim,
            "moderation",
            {"approval": "everyone", "log_channel": channel(log_room.id)},
        )
        assert not said(done).startswith("Approval needs")
        settings = await app.bot.desk.gate.settings.get(discord_sim.guilds[0].id)
        assert settings.approval_mode is ApprovalMode.EVERYONE
        assert settings.log_channel_id == log_room.id


async def test_honest_approval_request_never_posted_in_the_public_channel(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    general = guild.channels[0]
    env = {**env, "HAILUO_APPROVAL": "everyone"}  # on for every server, no log channel set
    image = media.make_image("PNG", 640, 480)
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "waves"},
            attachments={"image": SimAttachment(image, "a.png", "image/png", 640, 480, len(image))},
            user_id=MEMBER,
        )
        await inter.wait_response()
        await card_shows(discord_sim, inter.original_message, "approval")
        await app.bot.services.approvals.sweep()
        await app.bot.services.approvals.settled()
        job = (await app.bot.desk.jobs.recent_for_member(guild.id, MEMBER, 1))[0]
        assert job.status is JobStatus.AWAITING_APPROVAL
    posted = [
        m for m in discord_sim.channel_messages(general.id) if m.id != inter.original_message.id
    ]
    assert all(not m.attachments for m in posted), posted  # the unmoderated image stays private
    assert minimax.submits == []


async def test_honest_strike_that_blocks_is_told_privately_with_how_to_appeal(
    discord_sim, minimax, env
) -> None:
    """Strike 1 of 2 is told as a strike; strike 2 blocks, and the member is told that too
    (privately: not in the channel), with how long (until a moderator lifts it) and whom
    to ask; their next command is refused with the block."""
    guild = discord_sim.guilds[0]
    general = guild.channels[0]
    minimax.inject("submit", "sensitive_prompt", times=2)
    async with running_bot(env) as app:
        await ModerationSettingsRepository(app.bot.services.db).update(
            guild.id, {"strike_threshold": 2}, actor_id=1, now=time.time()
        )
        dm = discord_sim.dm_channel(MEMBER)
        for told in (1, 2):
            inter = await discord_sim.send_slash(
                ["hailuo", "text"], {"prompt": f"a cat surfing {told}"}, user_id=MEMBER
            )
            await inter.wait_response()
            await card_shows(discord_sim, inter.original_message, "Failed")
            await discord_sim.wait_for(
                lambda n=told: len(discord_sim.channel_messages(dm.id)) >= n or None
            )
        refused = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a dog"}, user_id=MEMBER
        )
        await refused.wait_response()
        jobs = await app.bot.desk.jobs.recent_for_member(guild.id, MEMBER, 5)
    first, second = [m.content for m in discord_sim.channel_messages(dm.id)]
    assert "you have 1 of 2 within 7 days" in first, first
    assert f"video #{jobs[0].id}" in second and "That was strike 2 of 2 within 7 days" in second
    assert "until a moderator lifts the block" in second and "ask this server's mod" in second
    assert refused.ephemeral and "blocked" in said(refused)
    assert [job.status for job in jobs] == [JobStatus.FAILED, JobStatus.FAILED]
    public = [m.content or "" for m in discord_sim.channel_messages(general.id) if not m.ephemeral]
    assert not any("strike" in text for text in public), public
