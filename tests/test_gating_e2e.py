"""Channel and role gating: refused privately, naming the rule, with nothing reserved."""

from __future__ import annotations

import pytest

from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import ModerationBlocked, UserInputError
from hailuo.model.spec import JobSpec, Mode
from hailuo.money.quotas import QuotaPolicy
from storage.blocklist import BlocklistKind, BlocklistRepository
from storage.db import Database
from storage.moderation import ModerationSettingsRepository
from tests import media
from tests.discord_sim import SimAttachment
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import (
    admin,
    channel,
    count,
    generate,
    moderated_guild,
    role,
    said,
)
from tests.support import FakeClock

pytestmark = pytest.mark.timeout(60)

MEMBER = 5_000_001


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


async def test_a_disallowed_channel_is_refused_naming_the_allowed_ones(
    discord_sim, minimax, env
) -> None:
    general, art, _ = discord_sim.guilds[0].channels
    async with running_bot(env) as app:
        db = app.bot.services.db
        await admin(discord_sim, "channels", {"action": "add", "channel": channel(art.id)})
        # A blocked word too: the channel rule is what the member hears first.
        await admin(discord_sim, ["blocklist", "add"], {"kind": "word", "text": "kill"})
        for prompt in ("a cat surfing", "kill"):
            inter = await generate(discord_sim, prompt, user_id=MEMBER, channel_id=general.id)
            assert inter.ephemeral
            assert said(inter) == f"Videos can be made only in <#{art.id}> here."
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "waves"},
            user_id=MEMBER,
            channel_id=general.id,
            attachments={
                "image": SimAttachment(
                    media.make_image("PNG", 800, 800), "a.png", "image/png", 800, 800
                )
            },
        )
        await inter.wait_response()
        assert inter.ephemeral and said(inter) == f"Videos can be made only in <#{art.id}> here."
        assert discord_sim.find_calls(method="GET", path_regex=r"/cdn/") == []
        assert await count(db, "ledger") == 0 and await count(db, "jobs") == 0
        assert minimax.submits == []

        inter = await generate(discord_sim, "a cat surfing", user_id=MEMBER, channel_id=art.id)
        assert not inter.ephemeral
        assert await count(db, "jobs") == 1


async def test_a_member_without_an_allowed_role_is_refused_naming_the_roles(
    discord_sim, minimax, env
) -> None:
    creators, moderators, _ = discord_sim.guilds[0].roles
    async with running_bot(env) as app:
        db = app.bot.services.db
        await admin(
            discord_sim, "roles", {"which": "generate", "action": "add", "role": role(creators.id)}
        )
        await admin(discord_sim, "moderation", {"moderator": role(moderators.id)})
        inter = await generate(discord_sim, "a fox", user_id=MEMBER, member_roles=[])
        assert inter.ephemeral
        assert said(inter) == f"You need one of these roles to make videos here: <@&{creators.id}>."
        assert await count(db, "ledger") == 0 and await count(db, "jobs") == 0
        assert minimax.submits == []

        inter = await generate(discord_sim, "a fox", user_id=MEMBER, member_roles=[creators.id])
        assert not inter.ephemeral
        # The moderator role may always generate.
        inter = await generate(
            discord_sim, "a fox", user_id=MEMBER + 1, member_roles=[moderators.id]
        )
        assert not inter.ephemeral
        assert await count(db, "jobs") == 2

        # Emptying the list lets everyone generate again.
        await admin(discord_sim, "roles", {"which": "generate", "action": "clear"})
        inter = await generate(discord_sim, "a fox", user_id=MEMBER + 2, member_roles=[])
        assert not inter.ephemeral


# --- the desk's own checks (no Discord): threads and the reservation race -------------------

GUILD, CHANNEL, THREAD_PARENT, OTHER = 1, 10, 20, 30
SPEC = JobSpec(mode=Mode.TEXT, prompt="a quiet lake")


def _desk(db: Database, clock: FakeClock) -> JobDesk:
    async def policy(guild_id: int) -> QuotaPolicy:
        return QuotaPolicy()

    return JobDesk(db, clock=clock, policy=policy, on_created=lambda: None)


async def test_a_thread_counts_as_its_parent_channel(db: Database, clock: FakeClock) -> None:
    desk = _desk(db, clock)
    await ModerationSettingsRepository(db).update(
        GUILD, {"allowed_channel_ids": {THREAD_PARENT}}, actor_id=1, now=clock()
    )
    assert await desk.precheck(GUILD, 42, SPEC, channel_id=999, parent_channel_id=THREAD_PARENT)
    job = await desk.create(JobRequest(GUILD, 999, 42, SPEC, parent_channel_id=THREAD_PARENT))
    assert job.channel_id == 999
    with pytest.raises(UserInputError) as refused:
        await desk.precheck(GUILD, 42, SPEC, channel_id=OTHER)
    assert refused.value.rule == "moderation.channel_not_allowed"


async def test_create_checks_again_under_its_transaction(db: Database, clock: FakeClock) -> None:
    """A rule that changed after the command's first look still applies: nothing reserved."""
    desk = _desk(db, clock)
    settings = ModerationSettingsRepository(db)
    assert await desk.precheck(GUILD, 42, SPEC, channel_id=CHANNEL, roles=[])
    await settings.update(GUILD, {"allowed_role_ids": {77}}, actor_id=1, now=clock())
    with pytest.raises(ModerationBlocked) as refused:
        await desk.create(JobRequest(GUILD, CHANNEL, 42, SPEC))
    assert refused.value.rule == "moderation.role_required"
    assert await desk.jobs.count_by_status() == {}
    assert (await desk.balance(GUILD, 42)).reserved == 0


async def test_create_screens_the_prompt_again_under_its_transaction(
    db: Database, clock: FakeClock
) -> None:
    """A blocklist entry added while the command downloaded its images still applies."""
    desk = _desk(db, clock)
    assert await desk.precheck(GUILD, 42, SPEC, channel_id=CHANNEL, roles=[])
    await BlocklistRepository(db).add(
        GUILD, BlocklistKind.WORD, "lake", label="no lakes", added_by=1, now=clock()
    )
    with pytest.raises(ModerationBlocked) as refused:
        await desk.create(JobRequest(GUILD, CHANNEL, 42, SPEC))
    assert (refused.value.rule, dict(refused.value.params)) == (
        "moderation.blocklist",
        {"rule": "no lakes"},
    )
    assert await desk.jobs.count_by_status() == {}
    assert (await desk.balance(GUILD, 42)).reserved == 0
