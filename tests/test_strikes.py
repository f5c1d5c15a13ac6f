"""Provider moderation refusals count as strikes; at the threshold the member is blocked.

The worker's ``_fail`` counts a job that ends with ``provider.moderation`` (MiniMax
1026 at submit, 1027 during generation, and the other providers' equivalents);
the strike, the block and their audit rows are mirrored to the log channel.
"""

from __future__ import annotations

import pytest

from hailuo.model.errors import ModerationBlocked
from hailuo.model.moderation import DAY
from hailuo.model.status import JobStatus
from hailuo.moderation.audit import AuditLog
from storage.audit import AuditAction
from storage.db import Database
from storage.moderation import BlockRepository, ModerationSettingsRepository
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import (
    admin,
    channel,
    count,
    generate,
    log_titles,
    mirrored,
    moderated_guild,
    said,
)
from tests.pg_server import BOTH_ENGINES
from tests.provider_matrix import PROVIDERS, ledger_kinds, provider_core
from tests.support import FakeClock

ENGINES = BOTH_ENGINES

GUILD, LOG, MEMBER = 1, 555, 42


async def _settings(db: Database, clock: FakeClock, threshold: int = 2) -> None:
    await ModerationSettingsRepository(db).update(
        GUILD,
        {"strike_threshold": threshold, "strike_window_seconds": DAY, "log_channel_id": LOG},
        actor_id=1,
        now=clock(),
    )


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_each_providers_content_refusal_is_a_strike(
    name: str, db: Database, clock: FakeClock
) -> None:
    entry = PROVIDERS[name]
    counts = entry.moderation_rule == "provider.moderation"
    async with provider_core(name, db, clock) as (sim, core):
        audit = AuditLog(db, core.notifier, clock=clock)
        await _settings(db, clock)
        await audit.drained()
        assert [e.action for _, e in core.notifier.logged] == [AuditAction.SETTING_CHANGED]
        core.notifier.logged.clear()
        for _ in range(2):
            sim.inject(*entry.moderation_fault)
            job = await core.new_job(user_id=MEMBER)
            job = await core.run_until(job.id, JobStatus.FAILED)
            assert job.failure_rule == entry.moderation_rule
            assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
        blocked = await BlockRepository(db).is_blocked(GUILD, MEMBER, clock())
        await audit.drained()
        actions = [e.action for _, e in core.notifier.logged]
        if counts:
            assert blocked
            assert actions == [AuditAction.STRIKE, AuditAction.STRIKE, AuditAction.BLOCK]
            assert {channel for channel, _ in core.notifier.logged} == {LOG}
            with pytest.raises(ModerationBlocked):
                await core.new_job(user_id=MEMBER)
        else:  # Freepik names no reason: a plain failure, never held against the member
            assert not blocked and actions == []
        audit.close()


async def test_a_refusal_at_submit_counts_too_and_other_failures_do_not(
    db: Database, clock: FakeClock
) -> None:
    async with provider_core("minimax", db, clock) as (sim, core):
        audit = AuditLog(db, core.notifier, clock=clock)
        await _settings(db, clock, threshold=3)
        await audit.drained()
        core.notifier.logged.clear()
        sim.inject("submit", "invalid_params")
        job = await core.run_until((await core.new_job(user_id=MEMBER)).id, JobStatus.FAILED)
        assert job.failure_rule != "provider.moderation"
        assert await count(db, "strikes") == 0
        sim.inject("submit", "sensitive_prompt")
        job = await core.run_until((await core.new_job(user_id=MEMBER)).id, JobStatus.FAILED)
        assert job.failure_params["code"] == "1026"
        assert await count(db, "strikes") == 1
        await audit.drained()
        (strike,) = [e for _, e in core.notifier.logged]
        assert strike.action is AuditAction.STRIKE and strike.job_id == job.id
        assert strike.target_user_id == MEMBER and strike.actor_id is None
        assert not await BlockRepository(db).is_blocked(GUILD, MEMBER, clock())


async def test_strikes_outside_the_window_do_not_add_up(db: Database, clock: FakeClock) -> None:
    async with provider_core("minimax", db, clock) as (sim, core):
        await _settings(db, clock)
        sim.inject("submit", "sensitive_prompt")
        await core.run_until((await core.new_job(user_id=MEMBER)).id, JobStatus.FAILED)
        clock.advance(DAY + 1)
        sim.inject("submit", "sensitive_prompt")
        await core.run_until((await core.new_job(user_id=MEMBER)).id, JobStatus.FAILED)
        assert await count(db, "strikes") == 2
        assert not await BlockRepository(db).is_blocked(GUILD, MEMBER, clock())


# --- the real bot -----------------------------------------------------------------------


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


@pytest.mark.timeout(60)
async def test_two_refusals_block_the_member_and_the_log_channel_hears_it(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    log = guild.channels[2]
    member = 6_000_001
    async with running_bot(env) as app:
        db = app.bot.services.db
        await admin(discord_sim, "moderation", {"strikes": 2, "log_channel": channel(log.id)})
        await mirrored(app)
        assert log_titles(discord_sim, log.id) == ["Setting changed"]

        minimax.inject("submit", "sensitive_prompt")  # MiniMax 1026: the prompt is refused
        assert not (await generate(discord_sim, "first try", user_id=member)).ephemeral
        await discord_sim.wait_for(lambda: len(log_titles(discord_sim, log.id)) == 2)
        minimax.inject("query", "generation_failed")  # 1027: the video is refused
        assert not (await generate(discord_sim, "second try", user_id=member)).ephemeral
        await discord_sim.wait_for(lambda: len(log_titles(discord_sim, log.id)) == 4)
        assert log_titles(discord_sim, log.id) == [
            "Setting changed",
            "Strike",
            "Strike",
            "Member blocked",
        ]
        block = discord_sim.channel_messages(log.id)[-1].embeds[0]
        fields = {f["name"]: f["value"] for f in block["fields"]}
        assert fields["By"] == "the bot" and fields["Member"] == f"<@{member}>"
        assert "2 provider moderation refusals within 7 days" in fields["Details"]

        rows = (await app.bot.services.audit.page(guild.id)).entries  # type: ignore[union-attr]
        assert [r.action.value for r in rows] == ["block", "strike", "strike", "setting_changed"]
        assert await count(db, "strikes") == 2

        inter = await generate(discord_sim, "third try", user_id=member)
        assert inter.ephemeral
        assert said(inter) == (
            "You are blocked from making videos on this server. To appeal, ask its moderators."
        )
        assert len(minimax.requests_to("submit")) == 2
        # The member's credits came back both times.
        assert (await app.bot.desk.balance(guild.id, member)).remaining == 10
