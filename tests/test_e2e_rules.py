"""End to end: the request rules, through the real bot, the Discord simulator and provider sims.

A request that cannot work is refused ephemerally before anything is reserved or sent:
no job row, no credit used, no public card left, no request at any provider simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cogs.help import help_lines
from hailuo.i18n.messages import render
from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment
from tests.e2e import bot_env, channel, minimax_env, private_answer, running_bot
from tests.sims.freepik import FreepikSimulator
from tests.sims.novita import NovitaSimulator
from tests.test_images import BAD

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def freepik() -> AsyncIterator[FreepikSimulator]:
    async with FreepikSimulator() as sim:
        yield sim
        assert sim.violations == []


@pytest.fixture
async def novita() -> AsyncIterator[NovitaSimulator]:
    async with NovitaSimulator() as sim:
        yield sim
        assert sim.violations == []


def picture(
    fmt: str = "PNG", width: int = 640, height: int = 480, name: str = "a"
) -> SimAttachment:
    data = media.make_image(fmt, width, height)
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    return SimAttachment(data, f"{name}.{fmt.lower()}", mime, width, height, len(data))


async def assert_nothing_spent(app, sim: DiscordSimulator, user_id: int) -> None:
    balance = await app.bot.desk.balance(sim.guilds[0].id, user_id)
    assert balance.used == 0
    assert await app.bot.desk.jobs.count_by_status() == {}
    assert all(not m.embeds for m in channel(sim).bot_messages() if not m.ephemeral)


async def test_animate_with_a_first_and_a_last_frame(discord_sim, minimax, env) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "day turns to night", "duration": 10},
            attachments={
                "image": picture("PNG", name="day"),
                "last_frame": picture("JPEG", 800, 600, name="night"),
            },
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        room = channel(discord_sim)
        await discord_sim.wait_for(lambda: room.videos())
    body = minimax.submits[0]
    assert body["first_frame_image"].startswith("data:image/png;base64,")
    assert body["last_frame_image"].startswith("data:image/jpeg;base64,")
    assert (body["model"], body["resolution"], body["duration"]) == (
        "MiniMax-Hailuo-02",
        "768P",
        10,
    )
    assert "first+last frame" in str(inter.original_message.embeds)
    assert len(discord_sim.find_calls(method="GET", path_regex=r"^/cdn/")) == 2  # both frames


async def test_first_and_last_frame_rules_are_told_before_any_download(
    discord_sim, minimax, env
) -> None:
    frames = {"image": picture(name="a"), "last_frame": picture(name="b")}
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], {"resolution": "512P"}, attachments=frames
        )
        text = await private_answer(discord_sim, inter)
        assert text == (
            "MiniMax-Hailuo-02 does not offer 512P for this kind of video. "
            "Choose one of: 768P, 1080P."
        )
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], {"model": "MiniMax-Hailuo-2.3"}, attachments=frames
        )
        text = await private_answer(discord_sim, inter)
        assert text.startswith("MiniMax-Hailuo-2.3 cannot make first+last frame videos")
        assert text.endswith("For first+last frame, choose one of: MiniMax-Hailuo-02.")
        await assert_nothing_spent(app, discord_sim, inter.user_id)
    assert discord_sim.find_calls(method="GET", path_regex=r"^/cdn/") == []
    assert minimax.requests == []


async def test_an_unknown_camera_command_is_refused_with_suggestions(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat [Pan lefty]"})
        text = await private_answer(discord_sim, inter)
        assert text == "[Pan lefty] is not a camera command. Did you mean: Pan left?"
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat [Zoom inn]"})
        assert "Did you mean: Zoom in" in await private_answer(discord_sim, inter)
        await assert_nothing_spent(app, discord_sim, inter.user_id)
    assert minimax.requests == []


async def test_the_camera_option_and_the_switches_reach_the_provider(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "text"],
            {
                "prompt": "a cat [Push out]",
                "camera": "Zoom in",
                "model": "MiniMax-Hailuo-2.3",
                "prompt_optimizer": False,
                "fast_pretreatment": True,
            },
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        note = await discord_sim.wait_for(
            lambda: next((f.content for f in inter.followups if f.ephemeral), None)
        )
        assert (
            note == "Note: [Push out] is not one of the camera commands; it was read as [Pull out]."
        )
        await discord_sim.wait_for(lambda: channel(discord_sim).videos())
    body = minimax.submits[0]
    assert body["prompt"] == "a cat [Pull out] [Zoom in]"
    assert body["model"] == "MiniMax-Hailuo-2.3"
    assert (body["prompt_optimizer"], body["fast_pretreatment"]) == (False, True)


async def test_camera_commands_count_toward_the_limit_as_sent(discord_sim, minimax, env) -> None:
    prompt = "x" * 1996 + "[固定]"  # 2000 as typed, 2009 as MiniMax gets it ("[Static shot]")
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": prompt})
        text = await private_answer(discord_sim, inter)
        assert text.startswith("Your prompt is 2009 characters long; the limit is 2000")
        await assert_nothing_spent(app, discord_sim, inter.user_id)
    assert minimax.requests == []


@pytest.mark.parametrize("only", ["freepik", "novita"])
async def test_512p_is_refused_where_only_freepik_or_novita_is_configured(
    discord_sim, freepik, novita, tmp_path, only
) -> None:
    sim = freepik if only == "freepik" else novita
    env = bot_env(
        discord_sim,
        tmp_path / "bot.sqlite3",
        HAILUO_PROVIDERS=only,
        **{f"{only.upper()}_API_KEY": sim.api_key, f"{only.upper()}_BASE_URL": sim.base_url},
    )
    label = {"freepik": "Freepik", "novita": "Novita"}[only]
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], {"resolution": "512P"}, attachments={"image": picture()}
        )
        text = await private_answer(discord_sim, inter)
        assert text == (
            f"512P is not offered for image-to-video by {label}, the providers this server "
            "uses; choose 768P or 1080P."
        )
        if only == "freepik":
            inter = await discord_sim.send_slash(
                ["hailuo", "text"], {"prompt": "rain", "fast_pretreatment": True}
            )
            assert (await private_answer(discord_sim, inter)).startswith(
                "The fast_pretreatment option is not offered by Freepik"
            )
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "rain", "model": "MiniMax-Hailuo-2.3"}
        )
        assert (await private_answer(discord_sim, inter)) == (
            f"MiniMax-Hailuo-2.3 is not offered by {label}, the providers this server uses; "
            "choose MiniMax-Hailuo-02."
        )
        await assert_nothing_spent(app, discord_sim, inter.user_id)
    assert freepik.requests == [] and novita.requests == []


async def test_512p_is_made_by_minimax(discord_sim, minimax, env) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"resolution": "512P", "duration": 10},
            attachments={"image": picture()},
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        await discord_sim.wait_for(lambda: channel(discord_sim).videos())
    assert (minimax.submits[0]["resolution"], minimax.submits[0]["duration"]) == ("512P", 10)


async def test_512p_skips_freepik_for_the_next_provider_that_serves_it(
    discord_sim, minimax, freepik, tmp_path
) -> None:
    env = bot_env(
        discord_sim,
        tmp_path / "bot.sqlite3",
        HAILUO_PROVIDERS="freepik,minimax",
        FREEPIK_API_KEY=freepik.api_key,
        FREEPIK_BASE_URL=freepik.base_url,
        **minimax_env(minimax),
    )
    async with running_bot(env):
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], {"resolution": "512P"}, attachments={"image": picture()}
        )
        await inter.wait_response()
        assert inter.response_type == 4 and not inter.ephemeral
        await discord_sim.wait_for(lambda: channel(discord_sim).videos())
    assert minimax.submits[0]["resolution"] == "512P"
    assert freepik.requests == []


async def test_no_bad_image_reaches_the_provider(discord_sim, minimax, env) -> None:
    """The whole corpus of bad images (tests/test_images.py), as first and as last frame."""
    async with running_bot(env) as app:
        for name, make, rule, params in BAD:
            data = make()
            bad = SimAttachment(data, "bad.png", "image/png", None, None, len(data))
            inter = await discord_sim.send_slash(["hailuo", "animate"], attachments={"image": bad})
            text = await private_answer(discord_sim, inter)
            assert text == render(rule, None, **params), name
        for name, make, rule, params in BAD[:3]:
            data = make()
            bad = SimAttachment(data, "bad.png", "image/png", None, None, len(data))
            inter = await discord_sim.send_slash(
                ["hailuo", "animate"], attachments={"image": picture(), "last_frame": bad}
            )
            text = await private_answer(discord_sim, inter)
            assert text == "The last frame: " + render(rule, None, **params), name
        await assert_nothing_spent(app, discord_sim, inter.user_id)
    assert minimax.requests == []


async def test_help_lists_the_camera_commands_costs_and_image_rules(
    discord_sim, minimax, env
) -> None:
    async with running_bot(env):
        inter = await discord_sim.send_slash(["hailuo", "help"])
        await inter.wait_response()
        assert inter.ephemeral and inter.response_type == 4
        embed = inter.response_data["embeds"][0]
    assert all(line in embed["description"] for line in help_lines())
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert (
        "image-to-video: 512P (6/10 s), 768P (6/10 s), 1080P (6 s)"
        in fields["What this server offers"]
    )
    assert (
        "first+last frame: 768P (6/10 s), 1080P (6 s) (models: MiniMax-Hailuo-02)"
        in fields["What this server offers"]
    )
    assert "768P 10 s = 2" in fields["Credits"]
    assert "smaller than 20 MB" in fields["Images"]
    assert "shorter side at least 301 px" in fields["Images"]
    assert "between 2:5 and 5:2" in fields["Images"]
    assert len(embed["description"]) <= 4096
    assert all(len(value) <= 1024 for value in fields.values())
