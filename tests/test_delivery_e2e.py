"""Delivery under Discord's and the providers' real faults, through the real bot and client.

Each test runs bot.py's object graph with the real discord.py client against the Discord
simulator, and MiniMax's simulator on the same injected clock, so hours of a provider's
file lifetime pass without waiting:

- history_forbidden: the bot may not read the channel's history (403), and the job is still
  delivered, exactly once (the nonce Discord deduplicates on does the look-up's work);
- channel_gone: a deleted channel sends the video to the member's DMs; lost access with DMs
  closed ends the job ``delivery_failed``, refunded, with the reason;
- delivery_budget: ten minutes of provider faults on the result URL and the download are
  outlasted; a file past its lifetime ends the job refunded, with the reason;
- upload_limit: 12 and 40 MB MP4s against 10, 25, 50 and 100 MiB servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot import App
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from tests.discord_sim import DiscordSimulator, SimGuild, SimMessage
from tests.e2e import SimSetup, card_shows, channel, running_bot
from tests.media import mp4_of_size
from tests.sims.minimax import MiniMaxSimulator
from tests.support import OffsetClock

MIB = 1024 * 1024


@pytest.fixture
def clock() -> OffsetClock:
    """The bot's and MiniMax's clock: wall time plus what a test skips ahead."""
    return OffsetClock()


@pytest.fixture
async def minimax(sim_setup: SimSetup, clock: OffsetClock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock, **sim_setup.minimax) as sim:
        yield sim
        assert sim.violations == []
        assert sim.download_auth_headers_seen == []


async def start_job(sim: DiscordSimulator, **kw: object) -> tuple[SimMessage, int]:
    """``/hailuo text``: the card, and the job's id (the card's title names it)."""
    inter = await sim.send_slash(["hailuo", "text"], {"prompt": "a fox in the snow"}, **kw)
    await inter.wait_response()
    card = inter.original_message
    assert card is not None
    title = str(card.embeds[0]["title"])
    return card, int(title.rsplit("#", 1)[1])


async def job_of(app: App, job_id: int) -> Job:
    job = await app.bot.desk.jobs.get(job_id)
    assert job is not None
    return job


async def tick_until(
    app: App, clock: OffsetClock, job_id: int, *states: JobStatus, step: float = 10.0
) -> Job:
    """Skip the clock ahead by ``step`` and take the worker's due steps, until a state."""
    for _ in range(2000):
        job = await job_of(app, job_id)
        if job.status in states:
            return job
        clock.advance(step)
        await app.bot.worker.tick()
    raise AssertionError(f"job {job_id} stuck in {job.status}")


async def ledger(app: App, job_id: int) -> list[str]:
    return [e.kind.value for e in await app.bot.desk.ledger.for_job(job_id)]


def posts_of(sim: DiscordSimulator, channel_id: int, job_id: int) -> list[SimMessage]:
    return [
        m
        for m in sim.channel_messages(channel_id)
        if not m.deleted and f"(job #{job_id})" in m.content
    ]


@pytest.fixture
def sim_setup() -> SimSetup:
    """MiniMax tasks run until a test completes them, so the channel can change meanwhile."""
    return SimSetup.held()


async def finished_task(sim: DiscordSimulator, minimax: MiniMaxSimulator, card: SimMessage) -> str:
    """The job's task, once the provider runs it (the newest one)."""
    await card_shows(sim, card, "Generating")
    return str(list(minimax.tasks)[-1])


# -- history_forbidden ----------------------------------------------------------------------


async def test_history_forbidden_delivers_once_with_the_nonce(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    """The first post lands but its answer is lost (503); the retry may not read history to
    see it, so it posts again with the job's nonce and Discord hands back the first."""
    room = channel(discord_sim)
    discord_sim.deny_bot(room.channel_id, read_message_history=True)
    discord_sim.inject_fault("POST", rf"/channels/{room.channel_id}/messages$", status=503)
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        minimax.complete(await finished_task(discord_sim, minimax, card))
        lost = await discord_sim.wait_for(
            lambda: discord_sim.find_calls("POST", rf"/channels/{room.channel_id}/messages$")
        )
        assert lost[0].status == 503
        # What Discord stored before the answer was lost: the post, under its nonce.
        landed = await discord_sim.post_user_message(
            room.channel_id,
            f"<@{discord_sim.default_user.id}> your video is ready (job #{job_id}).",
            user_id=discord_sim.bot_user.id,
            nonce=f"hailuo-{job_id}-v",
        )
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED
        assert job.delivered_message_id == landed.id
        assert await ledger(app, job_id) == ["reserve", "charge"]
        await card_shows(discord_sim, card, "Delivered")
    history = discord_sim.find_calls("GET", rf"/channels/{room.channel_id}/messages$")
    assert history and all(c.status == 403 and c.code == 50001 for c in history)
    assert [m.id for m in posts_of(discord_sim, room.channel_id, job_id)] == [landed.id]


async def test_history_forbidden_never_stalls_a_job(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    """A failed post, then a look-up that is refused: the job is still posted, once."""
    room = channel(discord_sim)
    discord_sim.deny_bot(room.channel_id, read_message_history=True)
    discord_sim.inject_fault("POST", rf"/channels/{room.channel_id}/messages$", status=503)
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        minimax.complete(await finished_task(discord_sim, minimax, card))
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED and job.delivery_attempts == 2
    assert len(posts_of(discord_sim, room.channel_id, job_id)) == 1
    assert len(room.videos()) == 1


# -- channel_gone ---------------------------------------------------------------------------


async def test_channel_gone_the_member_gets_the_video_by_dm(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    room = channel(discord_sim)
    member = discord_sim.default_user.id
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        task_id = await finished_task(discord_sim, minimax, card)
        await discord_sim.delete_channel(room.channel_id)
        minimax.complete(task_id)
        app.bot.worker.wake()
        dm = await discord_sim.wait_for(lambda: discord_sim.dm_channels.get(member))
        message = await discord_sim.wait_for(
            lambda: next(iter(posts_of(discord_sim, dm.id, job_id)), None)
        )
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED
        assert job.delivered_message_id == message.id and job.delivery_kind == "attachment"
        assert await ledger(app, job_id) == ["reserve", "charge"]
    assert [a.data for a in message.attachments] == [minimax.video]
    assert f"<#{room.channel_id}>" in message.content
    assert len(posts_of(discord_sim, dm.id, job_id)) == 1


async def test_channel_gone_a_video_over_the_dm_limit_goes_as_a_link(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    """No server boost counts in DMs: past the default limit the member gets the link."""
    env = {**env, "HAILUO_DEFAULT_UPLOAD_LIMIT": "20000"}
    minimax.video = mp4_of_size(30_000)
    room = channel(discord_sim)
    member = discord_sim.default_user.id
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim, attachment_size_limit=50 * MIB)
        task_id = await finished_task(discord_sim, minimax, card)
        await discord_sim.delete_channel(room.channel_id)
        minimax.complete(task_id)
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED and job.delivery_kind == "link"
    (message,) = posts_of(discord_sim, discord_sim.dm_channels[member].id, job_id)
    assert message.attachments == [] and "/download/" in message.content
    assert f"<#{room.channel_id}>" in message.content


async def test_channel_gone_lost_access_and_dms_closed_refunds_with_the_reason(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    room = channel(discord_sim)
    member = discord_sim.default_user.id
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        task_id = await finished_task(discord_sim, minimax, card)
        discord_sim.deny_bot(room.channel_id, view_channel=True)
        discord_sim.close_dms(member)
        minimax.complete(task_id)
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERY_FAILED
        assert job.failure_rule == "job.delivery_unreachable"
        assert await ledger(app, job_id) == ["reserve", "refund"]
        assert (await app.bot.desk.balance(discord_sim.guilds[0].id, member)).remaining == 10
        # Ended at the first permanent answer, with no retry.
        assert job.delivery_attempts == 1
    posts = discord_sim.find_calls("POST", r"/channels/\d+/messages$")
    assert [(c.status, c.code) for c in posts] == [(403, 50001), (403, 50007)]
    assert posts_of(discord_sim, room.channel_id, job_id) == []


async def test_channel_gone_no_attach_permission_posts_the_link_instead(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    room = channel(discord_sim)
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        task_id = await finished_task(discord_sim, minimax, card)
        discord_sim.deny_bot(room.channel_id, attach_files=True)
        minimax.complete(task_id)
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED and job.delivery_kind == "link"
    (link,) = posts_of(discord_sim, room.channel_id, job_id)
    assert "may not attach files" in link.content and "/download/" in link.content


# -- delivery_budget ------------------------------------------------------------------------


def drain(minimax: MiniMaxSimulator, endpoint: str) -> int:
    """The outage ends: drop the faults still queued for ``endpoint``; how many were left."""
    left = 0
    while minimax.faults.pop(endpoint) is not None:
        left += 1
    return left


async def test_delivery_budget_ten_minutes_of_provider_faults_are_outlasted(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        task_id = await finished_task(discord_sim, minimax, card)
        # Five minutes of failed result-URL look-ups, then five of failed downloads.
        minimax.inject("retrieve", "http_500", times=1000)
        minimax.complete(task_id)
        start = clock()
        while clock() - start < 300:
            clock.advance(15)
            await app.bot.worker.tick()
        retrieve_failures = 1000 - drain(minimax, "retrieve")
        minimax.inject("download", "http_503", times=1000)
        while clock() - start < 600:
            clock.advance(15)
            await app.bot.worker.tick()
        download_failures = 1000 - drain(minimax, "download")
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED
        assert await ledger(app, job_id) == ["reserve", "charge"]
        await card_shows(discord_sim, card, "Delivered")
    # More faults than the five tries that once refunded the job, and still one video.
    assert retrieve_failures + download_failures > 5 and download_failures >= 1
    assert len(channel(discord_sim).videos()) == 1
    assert "refunded" not in str(card.embeds)


async def test_delivery_budget_a_file_past_its_lifetime_refunds_with_the_reason(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        task_id = await finished_task(discord_sim, minimax, card)
        minimax.inject("retrieve", "http_503", times=10_000)
        minimax.complete(task_id)
        job = await tick_until(
            app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED, step=600
        )
        assert job.status is JobStatus.DELIVERY_FAILED
        assert (job.failure_rule, job.failure_params) == ("job.result_expired", {"hours": 9})
        assert await ledger(app, job_id) == ["reserve", "refund"]
        await card_shows(discord_sim, card, "keeps it only about 9 h")
        assert "refunded" in str(card.embeds)
    assert channel(discord_sim).videos() == []


# -- upload_limit ---------------------------------------------------------------------------

#: Upload limit -> the server's boost tier that gives it (25 MiB: an interaction's own
#: ``attachment_size_limit`` over an unboosted server, which discord.py's table calls 10 MiB).
TIERS = {10 * MIB: 0, 25 * MIB: 0, 50 * MIB: 2, 100 * MIB: 3}


@pytest.mark.parametrize("limit", list(TIERS), ids=lambda v: f"{v // MIB}MiB")
async def test_upload_limit_attaches_what_fits_and_links_the_rest(
    limit: int, minimax, env, clock
) -> None:
    guild = SimGuild(premium_tier=TIERS[limit], upload_limit=limit)
    async with DiscordSimulator(guilds=[guild]) as sim:
        env = {**env, "DISCORD_API_BASE_URL": sim.api_base, "DISCORD_GATEWAY_URL": sim.gateway_url}
        room = channel(sim)
        async with running_bot(env, clock=clock) as app:
            for size in (12_000_000, 40_000_000):
                minimax.video = mp4_of_size(size)
                card, job_id = await start_job(sim, attachment_size_limit=limit)
                # The second job's first query waits for the duration learned from the
                # first (on the skipped-ahead clock): skip ahead until the provider runs it.
                await tick_until(app, clock, job_id, JobStatus.RUNNING)
                task_id = await finished_task(sim, minimax, card)
                minimax.complete(task_id)
                job = await tick_until(
                    app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED
                )
                assert job.status is JobStatus.DELIVERED
                (post,) = posts_of(sim, room.channel_id, job_id)
                if size <= limit:
                    assert job.delivery_kind == "attachment"
                    assert [len(a.data) for a in post.attachments] == [size]
                else:  # re-encoded to fit the real limit, with a note and the original's link
                    assert job.delivery_kind == "attachment"
                    [attached] = post.attachments
                    assert len(attached.data) <= limit
                    assert "compressed" in post.content and "upload limit" in post.content
        # Never an upload Discord refused: the limit was known, not guessed.
        assert all(c.status != 413 for c in sim.calls)
        assert sim.internal_errors == []


async def test_delivery_budget_restart_in_a_busy_channel_finds_the_post_past_100_messages(
    discord_sim: DiscordSimulator, minimax, env, clock, tmp_path
) -> None:
    """A crash between Discord's accepting the post and the commit of ``delivered``, in a
    channel where 150 messages came between the card and that post: the look-up reads the
    whole window since the card, not the last (or first) 100 messages, and never reposts."""
    from hailuo.jobs.desk import JobDesk, JobRequest
    from hailuo.model.spec import JobSpec, Mode
    from hailuo.money.quotas import QuotaPolicy
    from storage.db import Database

    room = channel(discord_sim)
    bot_id = discord_sim.bot_user.id
    member = discord_sim.default_user.id
    card = await discord_sim.post_user_message(room.channel_id, "card", user_id=bot_id)
    db = await Database.open(tmp_path / "bot.sqlite3")

    async def policy(_: int) -> QuotaPolicy:
        return QuotaPolicy()

    desk = JobDesk(db, clock=clock, policy=policy, on_created=lambda: None)
    spec = JobSpec(mode=Mode.TEXT, prompt="p")
    request = JobRequest(discord_sim.guilds[0].id, room.channel_id, member, spec)
    job = await desk.create(replace(request, status_message_id=card.id))
    now = clock()
    job = await desk.jobs.transition(job, JobStatus.SUBMITTING, now, provider="minimax")
    job = await desk.jobs.transition(job, JobStatus.SUBMITTED, now, provider_task_id="1")
    job = await desk.jobs.transition(job, JobStatus.SUCCEEDED, now, result_locator="9")
    await desk.jobs.update(job, now, delivery_attempts=1)
    await db.close()
    for n in range(150):
        await discord_sim.post_user_message(room.channel_id, f"chatter {n}")
    earlier = await discord_sim.post_user_message(
        room.channel_id, f"<@{member}> your video is ready (job #{job.id}).", user_id=bot_id
    )
    for n in range(20):
        await discord_sim.post_user_message(room.channel_id, f"more chatter {n}")
    async with running_bot(env, clock=clock) as app:
        found = await tick_until(app, clock, job.id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert found.status is JobStatus.DELIVERED
        assert found.delivered_message_id == earlier.id
    assert [m.id for m in posts_of(discord_sim, room.channel_id, job.id)] == [earlier.id]
    assert minimax.requests_to("retrieve") == []
    # Read from the card onward, page after page.
    reads = discord_sim.find_calls("GET", rf"/channels/{room.channel_id}/messages$")
    assert reads[0].query["after"] == str(card.id) and len(reads) >= 2


async def test_delivery_budget_a_long_discord_429_is_waited_out_not_failed(
    discord_sim: DiscordSimulator, minimax, env, clock
) -> None:
    """A 429 longer than discord.py will sleep (60 s) comes back as RateLimited: the job
    waits as long as Discord said and is then delivered, never refunded."""
    room = channel(discord_sim)
    discord_sim.inject_fault(
        "POST",
        rf"/channels/{room.channel_id}/messages$",
        status=429,
        body={"retry_after": 120.0},
    )
    async with running_bot(env, clock=clock) as app:
        card, job_id = await start_job(discord_sim)
        minimax.complete(await finished_task(discord_sim, minimax, card))
        limited = await discord_sim.wait_for(
            lambda: discord_sim.find_calls("POST", rf"/channels/{room.channel_id}/messages$")
        )
        assert limited[0].status == 429
        for _ in range(10):  # 100 s of the bot's time: still inside Discord's 120
            clock.advance(10)
            await app.bot.worker.tick()
        assert len(discord_sim.find_calls("POST", rf"/channels/{room.channel_id}/messages$")) == 1
        job = await tick_until(app, clock, job_id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED)
        assert job.status is JobStatus.DELIVERED
        assert await ledger(app, job_id) == ["reserve", "charge"]
    posts = discord_sim.find_calls("POST", rf"/channels/{room.channel_id}/messages$")
    assert [c.status for c in posts] == [429, 200]
    assert len(room.videos()) == 1
