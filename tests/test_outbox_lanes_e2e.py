"""The last direct sends join the channel's outbox lane (issue 10's leftovers).

``pytest -k outbox_lane``: through the real bot, discord.py client and the Discord
simulator (5 creates per window per channel). In a busy channel (posts already queued in
its lane), the new card of a Re-roll and the card edit right after ``/hailuo animate``
creates its job wait their turn behind the queued posts, and the simulator answers no
429. The approval request and decision, and Extend's new card, are tested beside their
own flows (``test_approval_e2e.py``, ``test_extend_e2e.py``).
"""

from __future__ import annotations

import pytest

from tests import media
from tests.busy_lane import busy, components_name
from tests.discord_sim import DiscordSimulator, SimAttachment
from tests.e2e import card_shows, channel, custom_ids, press, private_text, running_bot
from tests.sims.minimax import MiniMaxSimulator
from tests.test_results_e2e import delivered

pytestmark = pytest.mark.timeout(90)
#: The busy lane holds the channel on purpose: on a loaded machine its posts take a while.
SLOW = 30.0


async def test_outbox_lane_carries_the_new_card_of_a_reroll(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str]
) -> None:
    member = discord_sim.default_user.id
    room = channel(discord_sim)
    async with running_bot(env) as app:
        first = await delivered(app, discord_sim, "a paper boat")
        card = discord_sim.messages[first.status_message_id]
        offer = await press(discord_sim, "reroll", first.id, card, member)
        assert "costs 1 credit" in await private_text(offer)
        confirm_message = offer.original_message
        assert confirm_message is not None

        lane = busy(app, discord_sim, room.channel_id)
        posts_before = app.bot.outbox.stats.posts
        confirm = await press(discord_sim, "reroll-ok", first.id, confirm_message, member)
        await confirm.wait_response(timeout=SLOW)
        await lane.done()
        jobs = await app.bot.desk.jobs.recent_for_member(first.guild_id, member, 1)
        second = jobs[0].id
        await discord_sim.wait_for(
            lambda: next(
                (m for m in room.bot_messages() if f"hailuo:info:{second}" in custom_ids(m)), None
            ),
            timeout=SLOW,
        )
        stats = app.bot.outbox.stats
    assert second != first.id
    new_card = lane.index_of(lambda c: components_name(c, f"hailuo:info:{second}"))
    assert new_card > lane.last_busy_index()  # it waited its turn behind the queued posts
    assert stats.posts >= posts_before + len(lane.tasks) + 1
    assert discord_sim.too_many_requests() == []


async def test_outbox_lane_carries_the_card_edit_after_animate_creates_its_job(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env: dict[str, str]
) -> None:
    room = channel(discord_sim)
    image = media.make_image("PNG", 640, 480)
    attachment = SimAttachment(image, "a.png", "image/png", 640, 480, len(image))
    async with running_bot(env) as app:
        lane = busy(app, discord_sim, room.channel_id)
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], {"prompt": "waves"}, attachments={"image": attachment}
        )
        await inter.wait_response(timeout=SLOW)
        card = inter.original_message
        assert card is not None
        await lane.done()
        await card_shows(discord_sim, card, "video #", timeout=SLOW)
        job = (await app.bot.desk.jobs.recent_for_member(room_guild(discord_sim), inter.user_id))[0]
    edit_path = f"/channels/{room.channel_id}/messages/{card.id}"
    first_edit = lane.index_of(lambda c: c.method == "PATCH" and c.path == edit_path)
    assert first_edit > lane.last_busy_index()
    assert job.status_message_id == card.id
    assert discord_sim.too_many_requests() == []


def room_guild(sim: DiscordSimulator) -> int:
    return sim.guilds[0].id
