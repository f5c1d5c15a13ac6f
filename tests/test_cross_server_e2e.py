"""No button or modal acts across servers (issue 11, finding 3): ``pytest -k cross_server``.

Every ``DynamicItem`` carries a job id in its ``custom_id`` and keeps working after a
restart, so nothing but the server the press comes from ties a press to a job. Here an
administrator and moderator of server B presses, in B, buttons and a modal whose
``custom_id`` names jobs of server A: Approve, Reject and its reason modal, Cancel and its
confirm, Re-roll and its confirm, Delete, Info, and the audit log's paging. Each press is
refused as if the job did not exist, and nothing of server A changes or leaks.
The real bot and discord.py client against the Discord and MiniMax simulators.
"""

from __future__ import annotations

import time

import discord
import pytest

from bot import App
from storage.audit import AuditRepository
from storage.moderation import ModerationSettingsRepository
from tests.discord_sim import (
    DiscordSimulator,
    SimChannel,
    SimGuild,
    SimInteraction,
    SimMessage,
    SimRole,
)
from tests.e2e import (
    Channel,
    SimSetup,
    card_shows,
    custom_ids,
    press,
    private_text,
    running_bot,
)

pytestmark = pytest.mark.timeout(90)

MEMBER_A, MOD_A, ATTACKER, ADMIN = 8001, 8101, 8201, 8301
EVERYTHING = discord.Permissions.all().value


def server(name: str) -> SimGuild:
    return SimGuild(
        name, channels=[SimChannel("general"), SimChannel("mod-log")], roles=[SimRole("Mods")]
    )


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup([server("A"), server("B")])


async def moderate(app: App, guild: SimGuild, mode: str) -> None:
    await ModerationSettingsRepository(app.bot.services.db).update(
        guild.id,
        {
            "approval_mode": mode,
            "moderator_role_id": guild.roles[0].id,
            "log_channel_id": guild.channels[1].id,
        },
        actor_id=ADMIN,
        now=time.time(),
    )


async def ask(sim: DiscordSimulator, app: App, guild: SimGuild, user: int, prompt: str):
    inter = await sim.send_slash(
        ["hailuo", "text"], {"prompt": prompt}, user_id=user, guild_id=guild.id
    )
    await inter.wait_response()
    assert not inter.ephemeral and inter.original_message is not None
    job = (await app.bot.desk.jobs.recent_for_member(guild.id, user, 1))[0]
    return inter.original_message, job.id


def request_of(sim: DiscordSimulator, guild: SimGuild, job_id: int):
    room = Channel(sim, guild.channels[1].id)
    wanted = f"hailuo:approve:{job_id}"
    return next((m for m in room.bot_messages() if wanted in custom_ids(m)), None)


def forged(sim: DiscordSimulator, room: SimChannel, custom_id: str) -> SimMessage:
    """A bot message in ``room`` carrying ``custom_id``: discord.py only dispatches a press
    of a component the message holds (as Discord only sends one), so the crafted press
    needs a message that holds it (a modified client, a restored database, a bug)."""
    button = {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}
    return sim.new_message(room, {"components": [{"type": 1, "components": [button]}]}, [])


async def snapshot(app: App, guild_id: int, job_ids: list[int]) -> object:
    """Everything a press could change in server A."""
    jobs = [await app.bot.desk.jobs.get(job_id) for job_id in job_ids]
    ledgers = [
        [(e.kind.value, e.delta) for e in await app.bot.desk.ledger.for_job(job_id)]
        for job_id in job_ids
    ]
    audit = await AuditRepository(app.bot.services.db).page(guild_id, limit=100)
    requests = [await app.bot.services.approvals.approvals.get(j) for j in job_ids]  # type: ignore[union-attr]
    return (
        [(j.status, j.delivered_message_id, j.status_message_id) for j in jobs if j],
        ledgers,
        [(e.id, e.action) for e in audit.entries],
        [(r.decision, r.decided_by) if r else None for r in requests],
    )


async def refused(inter: SimInteraction, job_id: int, words: str) -> str:
    text = await private_text(inter)
    assert words.format(job_id=job_id) in text, text
    return text


async def test_cross_server_presses_on_every_button_and_modal_change_nothing(
    discord_sim, minimax, env
) -> None:
    a, b = discord_sim.guilds
    b_mods = [b.roles[0].id]
    async with running_bot(env) as app:
        await moderate(app, a, "everyone")
        await moderate(app, b, "off")
        # Server A: one video delivered (approved by A's moderator), one waiting.
        card1, job1 = await ask(discord_sim, app, a, MEMBER_A, "the secret prompt of A")
        request1 = await discord_sim.wait_for(lambda: request_of(discord_sim, a, job1))
        approve = await press(
            discord_sim, "approve", job1, request1, MOD_A, member_roles=[a.roles[0].id]
        )
        assert f"You approved video #{job1}" in await private_text(approve)
        await card_shows(discord_sim, card1, "Delivered")
        _, job2 = await ask(discord_sim, app, a, MEMBER_A, "another prompt of A")
        await discord_sim.wait_for(lambda: request_of(discord_sim, a, job2))
        # Server B: the attacker has a video of their own there.
        _, own = await ask(discord_sim, app, b, ATTACKER, "B's own video")
        await app.bot.services.approvals.settled()  # type: ignore[union-attr]
        before = await snapshot(app, a.id, [job1, job2])
        jobs_before = await app.bot.desk.jobs.open_jobs()

        def attack(action: str, job_id: int):
            custom_id = f"hailuo:{action}:{job_id}"
            return discord_sim.send_component(
                custom_id,
                message_id=forged(discord_sim, b.channels[0], custom_id).id,
                user_id=ATTACKER,
                member_roles=b_mods,
                permissions=EVERYTHING,
            )

        unknown_here = "There is no video #{job_id} in this server."
        not_waiting = "Video #{job_id} is not waiting for a moderator."
        await refused(await attack("approve", job2), job2, not_waiting)
        reject = await attack("reject", job2)
        await refused(reject, job2, not_waiting)
        assert reject.modal is None  # no reason modal opens for another server's job
        modal = await discord_sim.send_modal_submit(
            f"hailuo:reject-reason:{job2}",
            {"reason": "rejected from another server"},
            user_id=ATTACKER,
            guild_id=b.id,
            channel_id=b.channels[0].id,
            member_roles=b_mods,
            permissions=EVERYTHING,
        )
        await refused(modal, job2, not_waiting)
        for action, job_id in (
            ("cancel", job2),
            ("cancel-ok", job2),
            ("reroll", job1),
            ("reroll-ok", job1),
            ("delete", job1),
            ("info", job1),
            ("info", job2),
        ):
            text = await refused(await attack(action, job_id), job_id, unknown_here)
            assert "secret prompt" not in text

        # The audit log's paging shows the presser's own server only, whatever the ref.
        audit_a = await AuditRepository(app.bot.services.db).page(a.id, limit=1)
        ref = audit_a.entries[0].id + 1
        paging = f"hailuo:audit:o:{ref}:0:"
        page = await discord_sim.send_component(
            paging,
            message_id=forged(discord_sim, b.channels[0], paging).id,
            user_id=ATTACKER,
            member_roles=b_mods,
            permissions=EVERYTHING,
        )
        await page.wait_response()
        shown = str((page.response_data or {}).get("embeds"))
        assert f"<@{MEMBER_A}>" not in shown and f"<@{MOD_A}>" not in shown

        await app.bot.services.approvals.settled()  # type: ignore[union-attr]
        assert await snapshot(app, a.id, [job1, job2]) == before
        assert [j.id for j in await app.bot.desk.jobs.open_jobs()] == [j.id for j in jobs_before]
        assert len(await app.bot.desk.jobs.recent_for_member(a.id, ATTACKER)) == 0
        assert [j.id for j in await app.bot.desk.jobs.recent_for_member(b.id, ATTACKER)] == [own]
        video = Channel(discord_sim, a.channels[0].id).videos()
        assert len(video) == 1 and not video[0].deleted
        request2 = request_of(discord_sim, a, job2)
        assert request2 is not None
        assert custom_ids(request2) == [f"hailuo:approve:{job2}", f"hailuo:reject:{job2}"]

        # In its own server the same request still works.
        approve2 = await press(
            discord_sim, "approve", job2, request2, MOD_A, member_roles=[a.roles[0].id]
        )
        assert f"You approved video #{job2}" in await private_text(approve2)
        assert (await app.bot.desk.jobs.get(job2)).status.value != "awaiting_approval"  # type: ignore[union-attr]
