"""``pytest -k autocomplete``: the model and resolution options list what this server's
providers can serve for the chosen mode and duration (issue 15, item 6).

Through the real bot and the Discord simulator: an autocomplete interaction (type 4) is
answered with type 8 and the choices read from ``providers.registry.TABLE`` through
``hailuo.jobs.capabilities.option_values`` for the configured providers.
"""

from __future__ import annotations

import pytest

from hailuo.jobs.capabilities import option_values
from hailuo.model.spec import Mode
from providers.registry import TABLE
from tests import media
from tests.discord_sim import SimAttachment
from tests.e2e import bot_env, minimax_env, running_bot
from tests.sims.freepik import FreepikSimulator

pytestmark = pytest.mark.timeout(60)

HAILUO_02 = "MiniMax-Hailuo-02"


async def offered(discord_sim, path, option, options=None, **kw) -> list[str]:
    inter = await discord_sim.send_slash(path, options or {}, focused=option, **kw)
    await inter.wait_response()
    assert inter.response_type == 8, inter.response_data
    return [choice["value"] for choice in inter.response_data["choices"]]


def picture() -> SimAttachment:
    data = media.make_image("PNG", 640, 480)
    return SimAttachment(data, "a.png", "image/png", 640, 480, len(data))


async def test_autocomplete_minimax_alone(discord_sim, minimax, env) -> None:
    async with running_bot(env):
        models = await offered(discord_sim, ["hailuo", "text"], "model", {"model": ""})
        assert HAILUO_02 in models and "MiniMax-Hailuo-2.3" in models
        text = await offered(discord_sim, ["hailuo", "text"], "resolution", {"resolution": ""})
        assert text == ["768P", "1080P"]  # 512P is image-to-video only
        ten = await offered(
            discord_sim, ["hailuo", "text"], "resolution", {"duration": 10, "resolution": ""}
        )
        assert ten == ["768P"]  # 1080P is 6 s only
        typed = await offered(discord_sim, ["hailuo", "text"], "resolution", {"resolution": "10"})
        assert typed == ["1080P"]
        image = await offered(
            discord_sim,
            ["hailuo", "animate"],
            "resolution",
            {"resolution": ""},
            attachments={"image": picture()},
        )
        assert image == ["512P", "768P", "1080P"]
        both = await offered(
            discord_sim,
            ["hailuo", "animate"],
            "resolution",
            {"resolution": ""},
            attachments={"image": picture(), "last_frame": picture()},
        )
        assert both == ["768P", "1080P"]  # first+last frame has no 512P


async def test_autocomplete_freepik_alone_offers_what_freepik_serves(
    discord_sim, minimax, tmp_path
) -> None:
    async with FreepikSimulator() as freepik:
        env = bot_env(
            discord_sim,
            tmp_path / "bot.sqlite3",
            HAILUO_PROVIDERS="freepik",
            FREEPIK_API_KEY=freepik.api_key,
            FREEPIK_BASE_URL=freepik.base_url,
        )
        async with running_bot(env):
            models = await offered(discord_sim, ["hailuo", "text"], "model", {"model": ""})
            image = await offered(
                discord_sim,
                ["hailuo", "animate"],
                "resolution",
                {"resolution": ""},
                attachments={"image": picture()},
            )
    assert models == [HAILUO_02]  # Freepik's endpoints are the Hailuo-02 model only
    assert image == ["768P", "1080P"]  # no 512P at Freepik
    assert (models, image) == (
        option_values(["freepik"], TABLE, [Mode.TEXT])[0],
        option_values(["freepik"], TABLE, [Mode.IMAGE])[1],
    )


async def test_autocomplete_two_providers_offer_the_union(discord_sim, minimax, tmp_path) -> None:
    async with FreepikSimulator() as freepik:
        env = bot_env(
            discord_sim,
            tmp_path / "bot.sqlite3",
            HAILUO_PROVIDERS="freepik,minimax",
            FREEPIK_API_KEY=freepik.api_key,
            FREEPIK_BASE_URL=freepik.base_url,
            **minimax_env(minimax),
        )
        async with running_bot(env):
            image = await offered(
                discord_sim,
                ["hailuo", "animate"],
                "resolution",
                {"resolution": ""},
                attachments={"image": picture()},
            )
            narrowed = await offered(
                discord_sim,
                ["hailuo", "animate"],
                "resolution",
                {"model": "MiniMax-Hailuo-2.3", "resolution": ""},
                attachments={"image": picture()},
            )
    assert image == ["512P", "768P", "1080P"]  # 512P from MiniMax
    assert "512P" not in narrowed  # Hailuo-2.3 offers no 512P
