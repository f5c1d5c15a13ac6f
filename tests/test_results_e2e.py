"""Where results go, through the real bot and discord.py client against the Discord simulator.

- thread: with ``/hailuo-admin results place:thread`` each job gets a thread started from
  its card (POST /channels/{id}/messages/{id}/threads) and the video is posted there; a
  channel where the bot may not start threads is refused before anything is charged;
- notify: ``/hailuo settings notify:`` mention (the member is pinged), quiet (no ping), dm
  (no ping, and a direct message links to the post); ``/hailuo-admin policy`` shows both.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from bot import App
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from tests.discord_sim import DiscordSimulator, SimMessage
from tests.e2e import channel, private_answer, running_bot
from tests.sims.minimax import MiniMaxSimulator

ADMIN = discord.Permissions(manage_guild=True, administrator=True).value


async def command(
    sim: DiscordSimulator, path: list[str], options: dict[str, Any], **kw: Any
) -> str:
    inter = await sim.send_slash(path, options, **kw)
    return await private_answer(sim, inter)


async def delivered(app: App, sim: DiscordSimulator, prompt: str = "a fox") -> Job:
    """``/hailuo text``, then wait until the worker delivered it."""
    inter = await sim.send_slash(["hailuo", "text"], {"prompt": prompt})
    await inter.wait_response()
    card = inter.original_message
    assert card is not None
    job_id = int(str(card.embeds[0]["title"]).rsplit("#", 1)[1])

    for _ in range(400):
        job = await app.bot.desk.jobs.get(job_id)
        assert job is not None
        if job.status.terminal:
            return job
        # The first status query waits for the expected run (scaled down by the fast
        # poll setting, well under a second): give the real clock a moment each turn.
        await asyncio.sleep(0.02)
        app.bot.worker.wake()
        await app.bot.worker.tick()
    raise AssertionError("the job did not end")


def video_post(sim: DiscordSimulator, job: Job) -> SimMessage:
    assert job.delivered_message_id is not None
    return sim.messages[job.delivered_message_id]


def post_body(sim: DiscordSimulator, channel_id: int, job: Job) -> dict[str, Any]:
    """The JSON of the bot's video post (what discord.py sent: content, allowed_mentions)."""
    calls = sim.find_calls("POST", rf"/channels/{channel_id}/messages$")
    body = next(c.json for c in calls if f"hailuo-{job.id}-v" == str((c.json or {}).get("nonce")))
    assert isinstance(body, dict)
    return body


async def test_thread_per_job_posts_the_video_in_a_thread_started_from_the_card(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    room = channel(discord_sim)
    async with running_bot(env) as app:
        said = await command(
            discord_sim, ["hailuo-admin", "results"], {"place": "thread"}, permissions=ADMIN
        )
        assert "in a thread per job" in said
        job = await delivered(app, discord_sim)
        assert job.status is JobStatus.DELIVERED
        assert job.thread_id == job.status_message_id  # a thread takes its message's id
        thread = discord_sim.find_channel(job.thread_id)
        assert thread is not None and thread.type == 11 and thread.parent_id == room.channel_id
        assert thread.name == f"Video #{job.id}"
        video = video_post(discord_sim, job)
        assert video.channel_id == job.thread_id
        assert any(a.filename.endswith(".mp4") for a in video.attachments)
        assert room.videos() == []  # nothing in the channel itself
        card = discord_sim.messages[job.status_message_id]
        await discord_sim.wait_for(
            lambda: f"/channels/{job.guild_id}/{job.thread_id}/{video.id})" in str(card.embeds)
        )
        policy = await command(discord_sim, ["hailuo-admin", "policy"], {}, permissions=ADMIN)
        assert "Results: in a thread per job. Your notifications: mention me." in policy
    assert discord_sim.find_calls("POST", r"/messages/\d+/threads$")[0].status == 201


async def test_thread_missing_permission_is_refused_before_charging(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    room = channel(discord_sim)
    discord_sim.deny_bot(room.channel_id, create_public_threads=True)
    async with running_bot(env) as app:
        await command(
            discord_sim, ["hailuo-admin", "results"], {"place": "thread"}, permissions=ADMIN
        )
        guild = discord_sim.guilds[0]
        granted = discord_sim.app_permissions(guild, guild.channels[0])
        without = granted & ~discord.Permissions(create_public_threads=True).value
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a fox"}, app_permissions=without
        )
        refusal = await private_answer(discord_sim, inter)
        assert "Create Public Threads" in refusal
        assert "Send Messages in Threads" not in refusal
        member = discord_sim.default_user.id
        assert await app.bot.desk.jobs.recent_for_member(room_guild(discord_sim), member) == []
    assert minimax.tasks == {}
    assert discord_sim.find_calls("POST", r"/threads$") == []


def room_guild(sim: DiscordSimulator) -> int:
    return sim.guilds[0].id


async def test_notify_mention_pings_the_member(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    async with running_bot(env) as app:
        job = await delivered(app, discord_sim)
    body = post_body(discord_sim, job.channel_id, job)
    member = discord_sim.default_user.id
    assert f"<@{member}>" in body["content"]
    assert body["allowed_mentions"]["users"] == [str(member)] or body["allowed_mentions"][
        "users"
    ] == [member]
    video = video_post(discord_sim, job)
    assert video.reference_id == job.status_message_id


async def test_notify_quiet_posts_without_a_ping(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    async with running_bot(env) as app:
        said = await command(discord_sim, ["hailuo", "settings"], {"notify": "quiet"})
        assert "quiet" in said
        job = await delivered(app, discord_sim)
    assert job.notify == "quiet"
    body = post_body(discord_sim, job.channel_id, job)
    member = discord_sim.default_user.id
    assert f"<@{member}>" not in body["content"]
    assert not body["allowed_mentions"].get("users")
    assert body["allowed_mentions"]["parse"] == []
    assert discord_sim.dm_channels.get(member) is None


async def test_notify_dm_sends_a_direct_message_with_the_link(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    member = discord_sim.default_user.id
    async with running_bot(env) as app:
        await command(discord_sim, ["hailuo", "settings"], {"notify": "dm"})
        settings = await command(discord_sim, ["hailuo", "settings"], {})
        assert "send me a direct message" in settings
        job = await delivered(app, discord_sim)
        dm = await discord_sim.wait_for(lambda: discord_sim.dm_channels.get(member))
        note = await discord_sim.wait_for(
            lambda: next(iter(discord_sim.channel_messages(dm.id)), None)
        )
    assert job.notify == "dm"
    body = post_body(discord_sim, job.channel_id, job)
    assert f"<@{member}>" not in body["content"]
    url = f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.delivered_message_id}"
    assert url in note.content and f"job #{job.id}" in note.content


async def test_notify_dm_with_closed_dms_mentions_the_member_once_and_delivers(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, env
) -> None:
    """DMs closed (50007): the video is still posted, and the member, who asked to be told,
    is mentioned once in the channel, in a reply to the video that says their DMs are
    closed and how to change it."""
    member = discord_sim.default_user.id
    discord_sim.close_dms(member)
    async with running_bot(env) as app:
        await command(discord_sim, ["hailuo", "settings"], {"notify": "dm"})
        job = await delivered(app, discord_sim)
        await app.bot.outbox.drained()
    assert job.status is JobStatus.DELIVERED and job.notify == "dm"
    video = video_post(discord_sim, job)
    assert any(a.filename.endswith(".mp4") for a in video.attachments)
    refused = [c for c in discord_sim.find_calls("POST", r"/messages$") if c.status == 403]
    assert [c.code for c in refused] == [50007]  # the DM was tried, once
    calls = discord_sim.find_calls("POST", rf"/channels/{job.channel_id}/messages$")
    notes = [c.json for c in calls if str((c.json or {}).get("nonce")) == f"hailuo-{job.id}-d"]
    assert len(notes) == 1, notes
    note = notes[0]
    assert note is not None and f"<@{member}>" in note["content"]
    assert "direct messages are closed" in note["content"] and "/hailuo settings" in note["content"]
    assert [str(u) for u in note["allowed_mentions"]["users"]] == [str(member)]
    assert str(note["message_reference"]["message_id"]) == str(video.id)
    # The video post itself still does not ping: the member chose DM, not a mention.
    assert f"<@{member}>" not in post_body(discord_sim, job.channel_id, job)["content"]
