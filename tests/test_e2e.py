"""End to end: the real bot, the real discord.py client, the Discord and MiniMax simulators."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hailuo.model.status import JobStatus
from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment, SimChannel
from tests.e2e import card_shows, channel, private_answer, running_bot

pytestmark = pytest.mark.timeout(60)


async def delivered_video(sim: DiscordSimulator, count: int = 1) -> list:
    room = channel(sim)
    return await sim.wait_for(lambda: room.videos() if len(room.videos()) >= count else None)


async def test_text_command_ends_with_one_mp4_in_the_channel(discord_sim, minimax, env) -> None:
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat surfing"})
        response = await inter.wait_response()
        assert response.status == 200 and inter.response_type == 4 and not inter.ephemeral
        videos = await delivered_video(discord_sim)
        assert videos[0].attachments[0].data == minimax.video
        assert len(minimax.submits) == 1
        # the status card is edited through the channel with the bot token, and says delivered
        card = inter.original_message
        await card_shows(discord_sim, card, "Delivered")
        edits = discord_sim.find_calls(
            method="PATCH", path_regex=rf"/channels/\d+/messages/{card.id}"
        )
        assert edits and all(call.auth == "bot" for call in edits)
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, inter.user_id))[
            0
        ]
        assert job.status is JobStatus.DELIVERED
        assert job.status_message_id == card.id
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, inter.user_id)
        assert balance.remaining == 9
    assert len(channel(discord_sim).videos()) == 1


async def test_animate_command_sends_the_checked_image(discord_sim, minimax, env) -> None:
    png = media.make_image("PNG", 640, 480)
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "the dog runs [Pan left]", "duration": 10},
            attachments={"image": SimAttachment(png, "dog.png", "image/png", 640, 480, len(png))},
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        videos = await delivered_video(discord_sim)
        assert videos[0].attachments[0].data == minimax.video
    body = minimax.submits[0]
    assert body["first_frame_image"].startswith("data:image/png;base64,")
    assert body["prompt"] == "the dog runs [Pan left]"
    assert body["duration"] == 10


async def assert_refused_privately(sim, minimax, inter, words: str) -> None:
    text = await private_answer(sim, inter)
    assert words in text
    assert minimax.requests_to("submit") == []


async def test_bad_requests_are_refused_privately_and_cost_nothing(
    discord_sim, minimax, env
) -> None:
    bad_images = {
        "small": (
            media.make_image("PNG", 200, 200),
            "image/png",
            "shorter side must be at least 301",
        ),
        "narrow": (media.make_image("PNG", 400, 1600), "image/png", "width:height must be between"),
        "text": (b"this is not a picture at all\n" * 20, "image/png", "judged by its content"),
    }
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "x" * 2001})
        await assert_refused_privately(discord_sim, minimax, inter, "2001 characters")
        for name, (data, ctype, words) in bad_images.items():
            inter = await discord_sim.send_slash(
                ["hailuo", "animate"],
                attachments={
                    "image": SimAttachment(data, f"{name}.png", ctype, None, None, len(data))
                },
            )
            await assert_refused_privately(discord_sim, minimax, inter, words)
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a long clip", "duration": 10, "resolution": "1080P"}
        )
        await assert_refused_privately(discord_sim, minimax, inter, "6 seconds only")
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, inter.user_id)
        assert balance.used == 0
        assert await app.bot.desk.jobs.count_by_status() == {}
    # no public status card is left behind for a refused image
    assert all(not m.embeds for m in channel(discord_sim).bot_messages() if not m.ephemeral)


async def test_provider_failure_refunds_and_says_why(discord_sim, minimax, env) -> None:
    minimax.inject("query", "generation_failed")
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "something"})
        await inter.wait_response()
        card = inter.original_message
        await card_shows(discord_sim, card, "refunded")
        assert "refused the content" in str(card.embeds)
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, inter.user_id)
        assert balance.used == 0
    assert channel(discord_sim).videos() == []


async def test_too_large_for_the_upload_limit_posts_a_link(discord_sim, minimax, env) -> None:
    discord_sim.upload_limit = 1000
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "big"}, attachment_size_limit=1000
        )
        await inter.wait_response()
        room = channel(discord_sim)
        message = await discord_sim.wait_for(
            lambda: next((m for m in room.bot_messages() if "/download/" in m.content), None)
        )
        assert "expires" in message.content
    assert room.videos() == []


async def test_a_413_from_the_upload_also_posts_a_link(discord_sim, minimax, env) -> None:
    discord_sim.inject_fault(
        "POST",
        r"/channels/\d+/messages$",
        status=413,
        body={"message": "Request entity too large", "code": 40005},
    )
    async with running_bot(env):
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "big"})
        await inter.wait_response()
        room = channel(discord_sim)
        await discord_sim.wait_for(
            lambda: next((m for m in room.bot_messages() if "/download/" in m.content), None)
        )


async def test_quota_command_answers_privately(discord_sim, minimax, env) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(["hailuo", "quota"])
        await inter.wait_response()
        assert inter.ephemeral
        assert "**10** of 10 credits" in inter.response_data["content"]


async def test_a_plain_restart_sends_no_command_sync(discord_sim, minimax, env) -> None:
    async with running_bot(env):
        pass
    assert len(discord_sim.command_syncs) == 1
    async with running_bot(env):
        pass
    assert len(discord_sim.command_syncs) == 1
    async with running_bot(env, force_sync=True):
        pass
    assert len(discord_sim.command_syncs) == 2


async def test_a_post_made_before_a_crash_is_found_not_repeated(
    discord_sim, minimax, env, tmp_path
) -> None:
    """The crash window between Discord accepting the post and the commit of ``delivered``."""
    from hailuo.jobs.desk import JobDesk, JobRequest
    from hailuo.model.spec import JobSpec, Mode
    from hailuo.money.quotas import QuotaPolicy
    from storage.db import Database

    room = channel(discord_sim)
    guild_id = discord_sim.guilds[0].id
    db = await Database.open(tmp_path / "bot.sqlite3")

    async def policy(_: int) -> QuotaPolicy:
        return QuotaPolicy()

    desk = JobDesk(db, clock=lambda: discord_sim.clock(), policy=policy, on_created=lambda: None)
    job = await desk.create(
        JobRequest(guild_id, room.channel_id, 77, JobSpec(mode=Mode.TEXT, prompt="p"))
    )
    now = discord_sim.clock()
    job = await desk.jobs.transition(job, JobStatus.SUBMITTING, now, provider="minimax")
    job = await desk.jobs.transition(job, JobStatus.SUBMITTED, now, provider_task_id="1")
    job = await desk.jobs.transition(job, JobStatus.SUCCEEDED, now, result_locator="9")
    await desk.jobs.update(job, now, delivery_attempts=1)
    await db.close()
    earlier = await discord_sim.post_user_message(
        room.channel_id,
        f"<@77> your video is ready (job #{job.id}).",
        user_id=discord_sim.bot_user.id,
    )
    async with running_bot(env) as app:
        await discord_sim.wait_for(lambda: app.bot.is_ready())
        found = None
        for _ in range(200):
            found = await app.bot.desk.jobs.get(job.id)
            if found and found.status is JobStatus.DELIVERED:
                break
            await app.bot.worker.tick()
        assert found is not None and found.status is JobStatus.DELIVERED
        assert found.delivered_message_id == earlier.id
    assert [m.id for m in room.bot_messages() if "your video is ready" in m.content] == [earlier.id]
    assert minimax.requests_to("retrieve") == []


async def test_health_and_metrics(discord_sim, minimax, env) -> None:
    import aiohttp

    secret_prompt = "a very private prompt"
    async with running_bot(env) as app, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{app.health.bound_port}"
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 200
            assert (await resp.json())["gateway"] is True
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": secret_prompt})
        await inter.wait_response()
        await delivered_video(discord_sim)
        card = inter.original_message
        await card_shows(discord_sim, card, "Delivered")
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
        # Read with Prometheus' own parser: label order and "1" vs "1.0" are the exposition's
        # business; the names, labels and values are what a scraper sees.
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("hailuo_jobs", (("state", "delivered"),))] == 1
        calls = (("call", "submit"), ("outcome", "ok"), ("provider", "minimax"))
        assert samples[("hailuo_provider_calls_total", calls)] == 1
        assert samples[("hailuo_interaction_answer_seconds_count", ())] == 1
        assert samples[("hailuo_delivery_bytes_count", (("kind", "attachment"),))] == 1
        assert "# TYPE hailuo_interaction_answer_seconds histogram" in text
        for secret in (secret_prompt, "sim-token", minimax.api_key):
            assert secret not in text
        await app.bot.services.db.close()
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 503


async def test_hailuo_approval_is_the_default_for_servers_without_a_choice(
    discord_sim, minimax, env
) -> None:
    env = {**env, "HAILUO_APPROVAL": "everyone"}
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "wait for a mod"})
        await inter.wait_response()
        room = channel(discord_sim)
        guild_id = discord_sim.guilds[0].id
        job = (await app.bot.desk.jobs.recent_for_member(guild_id, inter.user_id))[0]
        assert job.status is JobStatus.AWAITING_APPROVAL
        # No moderators' channel yet: the request is never posted in the public channel.
        await app.bot.services.approvals.sweep()
        await app.bot.services.approvals.settled()
        assert not any("hailuo:approve:" in str(m.components) for m in room.bot_messages())
        # Once the server names one, the next sweep asks the moderators there.
        extra = SimChannel("mods", guild_id=guild_id)
        discord_sim.guilds[0].channels.append(extra)
        mods = extra.id
        await app.bot.services.moderation.update(guild_id, {"log_channel_id": mods}, actor_id=1)
        await app.bot.services.approvals.sweep()
        held = await discord_sim.wait_for(
            lambda: next(
                (
                    m
                    for m in discord_sim.channel_messages(mods)
                    if "hailuo:approve:" in str(m.components)
                ),
                None,
            )
        )
        assert f"hailuo:approve:{job.id}" in str(held.components)
        assert not any("hailuo:approve:" in str(m.components) for m in room.bot_messages())
    assert minimax.requests_to("submit") == []


async def test_a_post_sent_again_within_the_nonce_window_is_the_first_message(
    discord_sim, minimax, env, db, tmp_path
) -> None:
    """A retry whose first answer was lost (a timeout, a restart) reuses the job's nonce,
    so Discord hands back the first message instead of posting a second video or link."""
    from cogs.notifier import DiscordNotifier
    from hailuo.jobs.desk import JobDesk, JobRequest
    from hailuo.model.spec import JobSpec, Mode
    from hailuo.money.quotas import QuotaPolicy

    room = channel(discord_sim)

    async def policy(_: int) -> QuotaPolicy:
        return QuotaPolicy()

    # A job of another database than the bot's: its worker never sees it.
    desk = JobDesk(db, clock=discord_sim.clock, policy=policy, on_created=lambda: None)
    job = await desk.create(
        JobRequest(discord_sim.guilds[0].id, room.channel_id, 77, JobSpec(Mode.TEXT, "p"))
    )
    video = tmp_path / "video.mp4"
    video.write_bytes(minimax.video)
    async with running_bot(env) as app:
        notifier = DiscordNotifier(app.bot)
        first = await notifier.post_video(job, video, len(minimax.video))
        assert await notifier.post_video(job, video, len(minimax.video)) == first
        link = await notifier.post_link(job, "https://cdn.example/v.mp4", "delivery.too_large")
        assert await notifier.post_link(job, "https://cdn.example/v.mp4", "delivery.too_large") == (
            link
        )
    assert link != first
    assert [m.id for m in room.bot_messages() if f"(job #{job.id})" in m.content] == [first, link]
    assert [m.id for m in room.videos()] == [first]
