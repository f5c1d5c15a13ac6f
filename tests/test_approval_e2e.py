"""The approval queue end to end: the real bot and discord.py client against the simulators.

Moderators press the Approve and Reject buttons of the request message (component
interactions, type 3) and answer the reason modal (type 5); the member's status card
and the request message are read back from the Discord simulator.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from bot import App
from storage.audit import AuditAction
from storage.db import Database
from storage.moderation import ModerationSettingsRepository
from tests import media
from tests.busy_lane import busy, components_name
from tests.discord_sim import (
    DiscordSimulator,
    SimAttachment,
    SimChannel,
    SimGuild,
    SimMessage,
    SimRole,
)
from tests.e2e import (
    Channel,
    SimSetup,
    audit_count,
    bot_env,
    card_shows,
    channel,
    custom_ids,
    minimax_env,
    press,
    private_text,
    running_bot,
)
from tests.sims.minimax import MiniMaxSimulator
from tests.support import OffsetClock
from tests.test_restart import BotProcess, ready

pytestmark = pytest.mark.timeout(90)

MEMBER, OUTSIDER, MOD_A, MOD_B, ADMIN = 4001, 4002, 4101, 4102, 4200


def make_guild() -> SimGuild:
    return SimGuild(
        channels=[SimChannel("general"), SimChannel("mod-log")], roles=[SimRole("Moderators")]
    )


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup([make_guild()])


def mods_role(sim: DiscordSimulator) -> int:
    return sim.guilds[0].roles[0].id


def settings_for(sim: DiscordSimulator, **extra: Any) -> dict[str, Any]:
    guild = sim.guilds[0]
    return {
        "approval_mode": "everyone",
        "moderator_role_id": mods_role(sim),
        "log_channel_id": guild.channels[1].id,
        **extra,
    }


async def moderate(db: Database, sim: DiscordSimulator, **extra: Any) -> None:
    await ModerationSettingsRepository(db).update(
        sim.guilds[0].id, settings_for(sim, **extra), actor_id=ADMIN, now=time.time()
    )


def message_with(sim: DiscordSimulator, channel_id: int, custom_id: str) -> SimMessage | None:
    room = Channel(sim, channel_id)
    return next((m for m in room.bot_messages() if custom_id in custom_ids(m)), None)


async def held_job(app: App, sim: DiscordSimulator, prompt: str = "a cat surfing"):
    """A member asks; returns (card, request message, job id) once the request is posted."""
    inter = await sim.send_slash(["hailuo", "text"], {"prompt": prompt}, user_id=MEMBER)
    await inter.wait_response()
    card = inter.original_message
    assert card is not None and not inter.ephemeral
    job = (await app.bot.desk.jobs.recent_for_member(sim.guilds[0].id, MEMBER, 1))[0]
    assert "Waiting for a moderator" in str(card.embeds)
    assert custom_ids(card) == [f"hailuo:cancel:{job.id}", f"hailuo:info:{job.id}"]
    log_channel = sim.guilds[0].channels[1].id
    request = await sim.wait_for(lambda: message_with(sim, log_channel, f"hailuo:approve:{job.id}"))
    return card, request, job.id


async def test_held_then_approved_is_submitted_once_and_delivered_once(
    discord_sim, minimax, env
) -> None:
    general = channel(discord_sim)
    async with running_bot(env) as app:
        await moderate(app.bot.services.db, discord_sim)
        card, request, job_id = await held_job(app, discord_sim)
        assert f"<@{MEMBER}>" in str(request.embeds) and "a cat surfing" in str(request.embeds)
        assert custom_ids(request) == [f"hailuo:approve:{job_id}", f"hailuo:reject:{job_id}"]
        assert minimax.submits == []

        approve = await press(
            discord_sim, "approve", job_id, request, MOD_A, member_roles=[mods_role(discord_sim)]
        )
        assert f"You approved video #{job_id}" in await private_text(approve)
        await discord_sim.wait_for(lambda: general.videos())
        await card_shows(discord_sim, card, "Delivered")
        assert custom_ids(card) == [
            f"hailuo:reroll:{job_id}",
            f"hailuo:delete:{job_id}",
            f"hailuo:info:{job_id}",
        ]
        await discord_sim.wait_for(lambda: request.components == [])
        assert f"Approved by <@{MOD_A}>" in str(request.embeds)
        assert await audit_count(app, discord_sim, AuditAction.APPROVE) == 1
        ledger = await app.bot.desk.ledger.for_job(job_id)
        assert [e.kind.value for e in ledger] == ["reserve", "charge"]
    assert len(minimax.submits) == 1 and len(general.videos()) == 1


async def test_the_request_shows_the_first_frame_the_provider_would_get(
    discord_sim, minimax, env
) -> None:
    png = media.make_image("PNG", 640, 480)
    log_channel = discord_sim.guilds[0].channels[1].id
    async with running_bot(env) as app:
        await moderate(app.bot.services.db, discord_sim)
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "the dog runs"},
            user_id=MEMBER,
            attachments={"image": SimAttachment(png, "dog.png", "image/png", 640, 480, len(png))},
        )
        await inter.wait_response()
        card = inter.original_message
        assert card is not None  # "checking your image", until the job is created
        await card_shows(discord_sim, card, "Waiting for a moderator")
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, MEMBER, 1))[0]
        assert custom_ids(card) == [f"hailuo:cancel:{job.id}", f"hailuo:info:{job.id}"]
        request = await discord_sim.wait_for(
            lambda: message_with(discord_sim, log_channel, f"hailuo:approve:{job.id}")
        )
        stored = (await app.bot.desk.jobs.images(job.id))["first"]
        assert [a.data for a in request.attachments] == [stored.data]
        assert request.attachments[0].filename.startswith(f"hailuo-{job.id}-first.")
    assert minimax.submits == []


async def test_rejected_with_a_reason_is_refunded_and_told(discord_sim, minimax, env) -> None:
    guild = discord_sim.guilds[0]
    async with running_bot(env) as app:
        await moderate(app.bot.services.db, discord_sim)
        card, request, job_id = await held_job(app, discord_sim, "a famous actor dancing")
        reject = await press(
            discord_sim, "reject", job_id, request, MOD_A, member_roles=[mods_role(discord_sim)]
        )
        await reject.wait_response()
        assert reject.modal is not None
        assert reject.modal["custom_id"] == f"hailuo:reject-reason:{job_id}"
        submit = await discord_sim.send_modal_submit(
            f"hailuo:reject-reason:{job_id}",
            {"reason": "No real people, please."},
            user_id=MOD_A,
            channel_id=guild.channels[1].id,
            message_id=request.id,
        )
        assert f"You rejected video #{job_id}" in await private_text(submit)
        await card_shows(discord_sim, card, "Rejected by a moderator")
        assert "No real people, please." in str(card.embeds)
        assert custom_ids(card) == [f"hailuo:info:{job_id}"]
        await discord_sim.wait_for(lambda: request.components == [])
        assert f"Rejected by <@{MOD_A}>: No real people, please." in str(request.embeds)
        ledger = await app.bot.desk.ledger.for_job(job_id)
        assert [(e.kind.value, e.delta) for e in ledger] == [("reserve", -1), ("refund", 1)]
        assert (await app.bot.desk.balance(guild.id, MEMBER)).remaining == 10
        assert await audit_count(app, discord_sim, AuditAction.REJECT) == 1
        await app.bot.worker.tick()
    assert minimax.submits == []


async def test_nobody_decides_in_time_so_it_expires_refunded(discord_sim, minimax, env) -> None:
    clock = OffsetClock()
    async with running_bot(env, clock=clock) as app:
        # The shortest expiry a server may set; the bot's clock then skips past it.
        await moderate(app.bot.services.db, discord_sim, approval_expiry_seconds=60)
        card, request, job_id = await held_job(app, discord_sim)
        clock.advance(61)
        app.bot.worker.wake()
        await card_shows(discord_sim, card, "Nobody approved it in time")
        await discord_sim.wait_for(lambda: request.components == [])
        assert "Expired" in str(request.embeds)
        assert custom_ids(card) == [f"hailuo:reroll:{job_id}", f"hailuo:info:{job_id}"]
        ledger = await app.bot.desk.ledger.for_job(job_id)
        assert [(e.kind.value, e.delta) for e in ledger] == [("reserve", -1), ("refund", 1)]
        assert await audit_count(app, discord_sim, AuditAction.EXPIRE) == 1
    assert minimax.submits == []


async def test_a_member_without_the_role_is_refused_and_nothing_changes(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env) as app:
        await moderate(app.bot.services.db, discord_sim)
        card, request, job_id = await held_job(app, discord_sim)
        approve = await press(discord_sim, "approve", job_id, request, OUTSIDER, member_roles=[])
        assert "Only moderators" in await private_text(approve)
        reject = await press(discord_sim, "reject", job_id, request, OUTSIDER, member_roles=[])
        assert "Only moderators" in await private_text(reject) and reject.modal is None
        # The member themselves may not approve their own job either.
        own = await press(discord_sim, "approve", job_id, request, MEMBER)
        assert "Only moderators" in await private_text(own)
        job = await app.bot.desk.jobs.get(job_id)
        assert job is not None and job.status.value == "awaiting_approval"
        assert custom_ids(request) == [f"hailuo:approve:{job_id}", f"hailuo:reject:{job_id}"]
        assert await audit_count(app, discord_sim, AuditAction.APPROVE) == 0
        assert "Waiting for a moderator" in str(card.embeds)
    assert minimax.submits == []


async def test_two_moderators_at_the_same_moment_make_one_decision(
    discord_sim, minimax, env
) -> None:
    general = channel(discord_sim)
    role = [mods_role(discord_sim)]
    async with running_bot(env) as app:
        await moderate(app.bot.services.db, discord_sim)
        _, request, job_id = await held_job(app, discord_sim)
        first, second = await asyncio.gather(
            press(discord_sim, "approve", job_id, request, MOD_A, member_roles=role),
            press(discord_sim, "approve", job_id, request, MOD_B, member_roles=role),
        )
        texts = sorted([await private_text(first), await private_text(second)])
        assert texts[1].startswith(f"You approved video #{job_id}")
        assert "already approved" in texts[0]
        winner = MOD_A if texts[1] == await private_text(first) else MOD_B
        assert f"<@{winner}> already approved" in texts[0]
        assert await audit_count(app, discord_sim, AuditAction.APPROVE) == 1
        await discord_sim.wait_for(lambda: general.videos())
    assert len(minimax.submits) == 1 and len(general.videos()) == 1


async def test_the_request_buttons_work_after_a_sigkill_restart(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    async with (
        DiscordSimulator(guilds=[make_guild()]) as discord_sim,
        MiniMaxSimulator() as minimax,
    ):
        db = await Database.open(database)
        try:
            await moderate(db, discord_sim)
        finally:
            await db.close()
        bot = BotProcess(bot_env(discord_sim, database, **minimax_env(minimax)), tmp_path)
        try:
            await bot.start()
            await ready(discord_sim, 1)
            inter = await discord_sim.send_slash(
                ["hailuo", "text"], {"prompt": "survive a kill"}, user_id=MEMBER
            )
            await inter.wait_response()
            log_channel = discord_sim.guilds[0].channels[1].id
            request = await discord_sim.wait_for(
                lambda: next(
                    (
                        m
                        for m in Channel(discord_sim, log_channel).bot_messages()
                        if any(c.startswith("hailuo:approve:") for c in custom_ids(m))
                    ),
                    None,
                ),
                timeout=30,
            )
            job_id = int(custom_ids(request)[0].rsplit(":", 1)[1])
            await bot.kill()

            await bot.start()
            await ready(discord_sim, 2)
            approve = await press(
                discord_sim,
                "approve",
                job_id,
                request,
                MOD_A,
                member_roles=[mods_role(discord_sim)],
            )
            assert f"You approved video #{job_id}" in await private_text(approve)
            general = channel(discord_sim)
            await discord_sim.wait_for(lambda: general.videos(), timeout=30)
        finally:
            await bot.stop()
        assert len(minimax.submits) == 1 and len(general.videos()) == 1
        # one request message: the restart did not post it again
        requests = [
            m
            for m in Channel(discord_sim, log_channel).bot_messages()
            if m.embeds and "Approval needed" in str(m.embeds)
        ]
        assert [m.id for m in requests] == [request.id]
        assert discord_sim.internal_errors == []


async def test_outbox_lane_carries_the_approval_request_and_its_decision(
    discord_sim, minimax, env
) -> None:
    """In a busy moderators' channel, the request and the decision's edit wait their turn
    behind the posts queued before them (``tests/busy_lane.py``), and nothing draws a 429."""
    log_channel = discord_sim.guilds[0].channels[1].id
    async with running_bot(env) as app:
        await moderate(app.bot.services.db, discord_sim)
        asked = busy(app, discord_sim, log_channel)
        _, request, job_id = await held_job(app, discord_sim)
        await asked.done()
        posted = asked.index_of(lambda c: components_name(c, f"hailuo:approve:{job_id}"))
        assert posted > asked.last_busy_index()

        decided = busy(app, discord_sim, log_channel, "decided")
        approve = await press(
            discord_sim, "approve", job_id, request, MOD_A, member_roles=[mods_role(discord_sim)]
        )
        assert f"You approved video #{job_id}" in await private_text(approve)
        await decided.done()
        await discord_sim.wait_for(lambda: request.components == [])
    edit_path = f"/channels/{log_channel}/messages/{request.id}"
    edit = next(
        i
        for i, c in enumerate(discord_sim.calls)
        if c.ok and c.method == "PATCH" and c.path == edit_path
    )
    assert edit > decided.last_busy_index()
    assert discord_sim.too_many_requests() == []
