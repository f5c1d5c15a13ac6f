"""The status card's controls end to end: the real bot against the Discord and MiniMax sims.

Buttons are pressed as component interactions on the stored card (or on the private
confirm message), ``/hailuo cancel`` is a slash command with autocomplete. To hold a
job in a state the worker leaves in milliseconds (``submitting``, ``succeeded``), the
provider's call is gated: the test awaits the moment the worker is inside the call,
acts, then lets the call go on. Nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot import App
from hailuo.model.status import JobStatus
from storage.audit import AuditAction
from tests.discord_sim import DiscordSimulator
from tests.discord_sim.interactions import nest_options
from tests.e2e import (
    Channel,
    SimSetup,
    audit_count,
    card_shows,
    channel,
    custom_ids,
    press,
    private_text,
    running_bot,
)

pytestmark = pytest.mark.timeout(60)

MEMBER, OTHER, MOD = 5001, 5002, 5003
AUTOCOMPLETE = 4


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held()  # tasks run until completed


async def ask(sim: DiscordSimulator, app: App, prompt: str, user: int = MEMBER):
    """A ``/hailuo text`` request: its public card and its job id."""
    inter = await sim.send_slash(["hailuo", "text"], {"prompt": prompt}, user_id=user)
    await inter.wait_response()
    assert not inter.ephemeral and inter.original_message is not None
    job = (await app.bot.desk.jobs.recent_for_member(sim.guilds[0].id, user, 1))[0]
    return inter.original_message, job.id


async def ledger(app: App, job_id: int) -> list[tuple[str, int]]:
    return [(e.kind.value, e.delta) for e in await app.bot.desk.ledger.for_job(job_id)]


async def status(app: App, job_id: int) -> JobStatus:
    job = await app.bot.desk.jobs.get(job_id)
    assert job is not None
    return job.status


class Gate:
    """Holds one provider call open: ``entered`` once the worker is inside it."""

    def __init__(self, call: Callable[..., Awaitable[Any]]) -> None:
        self.call = call
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, *args: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return await self.call(*args)


def gate(app: App, method: str, monkeypatch: pytest.MonkeyPatch) -> Gate:
    provider = app.bot.worker.providers["minimax"]
    held = Gate(getattr(provider, method))
    monkeypatch.setattr(provider, method, held)
    return held


async def autocomplete(sim: DiscordSimulator, user: int, typed: str = "") -> list[dict]:
    """Type into ``/hailuo cancel``'s job option (an autocomplete interaction, type 4)."""
    ctx = sim._context(user_id=user, guild_id=None, channel_id=None, locale="en-US")
    focused = [{"name": "job", "type": 4, "value": typed, "focused": True}]
    data = {
        "id": str(sim.command_id(None, "hailuo", 1)),
        "name": "hailuo",
        "type": 1,
        "options": nest_options(["hailuo", "cancel"], focused),
    }
    inter = await sim._dispatch_interaction(AUTOCOMPLETE, ctx, data, 0.0)
    await inter.wait_response()
    assert inter.response_type == 8
    return list((inter.response_data or {})["choices"])


async def test_cancel_while_queued_refunds_in_full(discord_sim, minimax, env) -> None:
    async with running_bot({**env, "MINIMAX_SUBMITS_PER_MINUTE": "1"}) as app:
        _, first = await ask(discord_sim, app, "takes the only slot")
        card, second = await ask(discord_sim, app, "waits in line")
        await card_shows(discord_sim, card, "Queued (position 1, ")
        assert custom_ids(card) == [f"hailuo:cancel:{second}", f"hailuo:info:{second}"]

        cancel = await press(discord_sim, "cancel", second, card, MEMBER)
        assert "refunded to you: 1 credit" in await private_text(cancel)
        assert await ledger(app, second) == [("reserve", -1), ("refund", 1)]
        await card_shows(discord_sim, card, "Cancelled")
        assert custom_ids(card) == [f"hailuo:reroll:{second}", f"hailuo:info:{second}"]
        assert await audit_count(app, discord_sim, AuditAction.CANCEL) == 1
        assert await status(app, first) is not JobStatus.CANCELLED
    assert len(minimax.submits) == 1


async def test_cancel_while_running_stays_charged_after_a_confirm(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env) as app:
        card, job_id = await ask(discord_sim, app, "a long take")
        await card_shows(discord_sim, card, "Generating")
        assert custom_ids(card) == [f"hailuo:cancel:{job_id}", f"hailuo:info:{job_id}"]

        cancel = await press(discord_sim, "cancel", job_id, card, MEMBER)
        warning = await private_text(cancel)
        assert "stays charged" in warning and "offers no way to stop it" in warning
        confirm_message = cancel.original_message
        assert confirm_message is not None
        assert custom_ids(confirm_message) == [f"hailuo:cancel-ok:{job_id}"]
        # Nothing happened before the confirm.
        assert await status(app, job_id) is JobStatus.RUNNING
        assert await ledger(app, job_id) == [("reserve", -1)]

        confirm = await press(discord_sim, "cancel-ok", job_id, confirm_message, MEMBER)
        await confirm.wait_response()
        assert confirm.response_type == 7  # the confirm turns into the answer
        assert "stays charged" in confirm_message.content and confirm_message.components == []
        assert await ledger(app, job_id) == [("reserve", -1), ("charge", 0)]
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, MEMBER)
        assert (balance.used, balance.reserved, balance.remaining) == (1, 0, 9)
        await card_shows(discord_sim, card, "Cancelled")
        assert await audit_count(app, discord_sim, AuditAction.CANCEL) == 1

        # The bot no longer follows the task: finished, it is neither fetched nor posted.
        queries = len(minimax.requests_to("query"))
        minimax.complete(next(iter(minimax.tasks)))
        await app.bot.worker.tick()
        await app.bot.worker.tick()
        assert len(minimax.requests_to("query")) == queries
    assert Channel(discord_sim, discord_sim.guilds[0].channels[0].id).videos() == []


async def test_submitting_and_succeeded_refuse_cancel_and_say_why(
    discord_sim, minimax, env, monkeypatch
) -> None:
    async with running_bot(env) as app:
        submit = gate(app, "submit", monkeypatch)
        card, job_id = await ask(discord_sim, app, "caught on the wire")
        await submit.entered.wait()
        assert await status(app, job_id) is JobStatus.SUBMITTING
        cancel = await press(discord_sim, "cancel", job_id, card, MEMBER)
        assert "being sent to the provider at this very moment" in await private_text(cancel)
        assert await ledger(app, job_id) == [("reserve", -1)]
        fetch = gate(app, "result_url", monkeypatch)
        submit.release.set()

        await card_shows(discord_sim, card, "Generating")
        minimax.complete(next(iter(minimax.tasks)))
        await fetch.entered.wait()
        assert await status(app, job_id) is JobStatus.SUCCEEDED
        command = await discord_sim.send_slash(
            ["hailuo", "cancel"], {"job": job_id}, user_id=MEMBER
        )
        assert "already made and being posted" in await private_text(command)
        assert await ledger(app, job_id) == [("reserve", -1)]
        fetch.release.set()

        await card_shows(discord_sim, card, "Delivered")  # after the commit
        assert await ledger(app, job_id) == [("reserve", -1), ("charge", 0)]
        assert await audit_count(app, discord_sim, AuditAction.CANCEL) == 0


async def test_reroll_makes_a_second_job_with_its_own_reservation(
    discord_sim, minimax, env
) -> None:
    room = channel(discord_sim)
    async with running_bot(env) as app:
        card, first = await ask(discord_sim, app, "a paper boat")
        await card_shows(discord_sim, card, "Generating")
        minimax.complete(next(iter(minimax.tasks)))
        await card_shows(discord_sim, card, "Delivered")

        reroll = await press(discord_sim, "reroll", first, card, MEMBER)
        offer = await private_text(reroll)
        assert "costs 1 credit; you have 9 left" in offer
        confirm_message = reroll.original_message
        assert confirm_message is not None
        assert custom_ids(confirm_message) == [f"hailuo:reroll-ok:{first}"]
        assert await app.bot.desk.jobs.count_by_status() == {"delivered": 1}  # not yet

        confirm = await press(discord_sim, "reroll-ok", first, confirm_message, MEMBER)
        await confirm.wait_response()
        second = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, MEMBER, 1))[
            0
        ].id
        assert second != first
        assert f"Re-rolled video #{first} as #{second}" in confirm_message.content
        assert await ledger(app, second) == [("reserve", -1)]
        assert await ledger(app, first) == [("reserve", -1), ("charge", 0)]
        new_card = await discord_sim.wait_for(
            lambda: next(
                (m for m in room.bot_messages() if f"hailuo:info:{second}" in custom_ids(m)), None
            )
        )
        assert f"Hailuo video #{second}" in str(new_card.embeds)
        await discord_sim.wait_for(lambda: len(minimax.tasks) == 2)
        minimax.complete(list(minimax.tasks)[1])
        await discord_sim.wait_for(lambda: len(room.videos()) == 2)
        assert minimax.submits[0]["prompt"] == minimax.submits[1]["prompt"] == "a paper boat"
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, MEMBER)
        assert balance.used == 2


async def test_delete_by_someone_else_is_refused_and_info_shows_the_task(
    discord_sim, minimax, env
) -> None:
    room = channel(discord_sim)
    async with running_bot(env) as app:
        card, job_id = await ask(discord_sim, app, "fireworks")
        await card_shows(discord_sim, card, "Generating")
        task_id = next(iter(minimax.tasks))
        info = await press(discord_sim, "info", job_id, card, OTHER)
        text = await private_text(info)
        assert f"task id: {task_id}" in text and "Provider: minimax" in text
        assert "held until it ends" in text
        minimax.complete(task_id)
        video = (await discord_sim.wait_for(lambda: room.videos()))[0]
        await discord_sim.wait_for(lambda: f"hailuo:delete:{job_id}" in custom_ids(card))

        refused = await press(discord_sim, "delete", job_id, card, OTHER)
        assert "or a moderator, can delete" in await private_text(refused)
        assert not video.deleted
        assert await audit_count(app, discord_sim, AuditAction.VIDEO_DELETED) == 0

        delete = await press(discord_sim, "delete", job_id, card, MEMBER)
        assert f"The video of #{job_id} is removed" in await private_text(delete)
        assert video.deleted
        await discord_sim.wait_for(lambda: f"hailuo:delete:{job_id}" not in custom_ids(card))
        assert custom_ids(card) == [f"hailuo:reroll:{job_id}", f"hailuo:info:{job_id}"]
        assert await audit_count(app, discord_sim, AuditAction.VIDEO_DELETED) == 1
        info = await press(discord_sim, "info", job_id, card, MEMBER)
        assert "spent" in await private_text(info)


async def test_the_cancel_command_suggests_the_members_open_jobs(discord_sim, minimax, env) -> None:
    async with running_bot(env) as app:
        card, mine = await ask(discord_sim, app, "my own clip")
        their_card, theirs = await ask(discord_sim, app, "their clip", user=OTHER)
        await card_shows(discord_sim, card, "Generating")
        await card_shows(discord_sim, their_card, "Generating")  # each asked on its own time
        choices = await autocomplete(discord_sim, MEMBER)
        assert [c["value"] for c in choices] == [mine]
        assert choices[0]["name"].startswith(f"#{mine} · ") and "my own clip" in choices[0]["name"]
        assert [c["value"] for c in await autocomplete(discord_sim, OTHER)] == [theirs]
        assert await autocomplete(discord_sim, MEMBER, typed="999") == []

        command = await discord_sim.send_slash(["hailuo", "cancel"], {"job": mine}, user_id=MEMBER)
        assert "stays charged" in await private_text(command)
        confirm_message = command.original_message
        assert confirm_message is not None
        confirm = await press(discord_sim, "cancel-ok", mine, confirm_message, MEMBER)
        await confirm.wait_response()
        assert await status(app, mine) is JobStatus.CANCELLED
        assert await autocomplete(discord_sim, MEMBER) == []

        # Someone else's job, by id: refused, and nothing changes.
        command = await discord_sim.send_slash(
            ["hailuo", "cancel"], {"job": theirs}, user_id=MEMBER
        )
        assert "Only the member who asked" in await private_text(command)
        assert await status(app, theirs) is JobStatus.RUNNING
        assert await audit_count(app, discord_sim, AuditAction.CANCEL) == 1


async def test_stale_press_of_a_button_its_card_no_longer_shows_is_answered(
    discord_sim, minimax, env
) -> None:
    """Discord sends a press with the message as it is by then: a button the card has lost
    (or not gained yet) since the member clicked it. discord.py drops such a press without
    an answer ("This interaction failed"); the bot answers it as the job is now."""
    async with running_bot(env) as app:
        card, job_id = await ask(discord_sim, app, "a lighthouse")
        await card_shows(discord_sim, card, "Generating")
        assert f"hailuo:reroll:{job_id}" not in custom_ids(card)
        early = await press(discord_sim, "reroll", job_id, card, MEMBER)
        assert "re-roll it once it is done" in await private_text(early)

        minimax.complete(next(iter(minimax.tasks)))
        await card_shows(discord_sim, card, "Delivered")
        assert f"hailuo:cancel:{job_id}" not in custom_ids(card)
        late = await press(discord_sim, "cancel", job_id, card, MEMBER)
        assert "nothing to cancel" in await private_text(late)
        assert await ledger(app, job_id) == [("reserve", -1), ("charge", 0)]

        # A refusal is told privately, as for any press (here: a job of no such number).
        unknown = await press(discord_sim, "info", 999_999, card, MEMBER)
        assert "There is no video #999999" in await private_text(unknown)

        # A button the card shows is run once, by discord.py alone.
        offer = await press(discord_sim, "reroll", job_id, card, MEMBER)
        assert "costs 1 credit" in await private_text(offer)
        assert len(discord_sim.find_calls("POST", rf"/interactions/{offer.id}/")) == 1
    assert discord_sim.internal_errors == []
