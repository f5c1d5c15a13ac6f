"""``pytest -k provider_correct``: providers never change a job silently (issue 15, item 7).

Through the real bot, the Discord simulator and the providers' simulators: Freepik's retired
768p tier fails over to the next provider (or fails refunded saying why) and never becomes a
1080P job; odkkk's refusal of the image as sent (``image_processing_error``) moves the job to
the next provider that takes images instead of failing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hailuo.model.status import JobStatus
from tests import media
from tests.discord_sim import SimAttachment
from tests.e2e import bot_env, card_shows, channel, minimax_env, running_bot
from tests.sims.freepik import FreepikSimulator
from tests.sims.odkkk import OdkkkSimulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def freepik() -> AsyncIterator[FreepikSimulator]:
    async with FreepikSimulator() as sim:
        yield sim
        assert sim.violations == []


@pytest.fixture
async def odkkk() -> AsyncIterator[OdkkkSimulator]:
    async with OdkkkSimulator() as sim:
        yield sim
        assert sim.violations == []


def picture() -> SimAttachment:
    data = media.make_image("PNG", 640, 480)
    return SimAttachment(data, "a.png", "image/png", 640, 480, len(data))


def freepik_env(freepik: FreepikSimulator) -> dict[str, str]:
    return {"FREEPIK_API_KEY": freepik.api_key, "FREEPIK_BASE_URL": freepik.base_url}


async def test_provider_correct_freepik_768p_refusal_fails_over_never_1080p(
    discord_sim, minimax, freepik, tmp_path
) -> None:
    freepik.retire("768p")
    env = bot_env(
        discord_sim,
        tmp_path / "bot.sqlite3",
        HAILUO_PROVIDERS="freepik,minimax",
        **freepik_env(freepik),
        **minimax_env(minimax),
    )
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat surfing"})
        await inter.wait_response()
        await discord_sim.wait_for(lambda: channel(discord_sim).videos())
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, inter.user_id))[
            0
        ]
    assert job.provider == "minimax" and job.spec.resolution == "768P"
    assert minimax.submits[0]["resolution"] == "768P"
    assert [r.path.rsplit("-", 1)[1] for r in freepik.requests_to("submit")] == ["768p"]
    assert freepik.tasks == {}  # nothing made at 1080p


async def test_provider_correct_freepik_alone_fails_refunded_and_says_why(
    discord_sim, minimax, freepik, tmp_path
) -> None:
    freepik.retire("768p")
    env = bot_env(
        discord_sim, tmp_path / "bot.sqlite3", HAILUO_PROVIDERS="freepik", **freepik_env(freepik)
    )
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat surfing"})
        await inter.wait_response()
        card = inter.original_message
        await card_shows(discord_sim, card, "refunded")
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, inter.user_id))[
            0
        ]
        balance = await app.bot.desk.balance(discord_sim.guilds[0].id, inter.user_id)
    assert job.status is JobStatus.FAILED and job.spec.resolution == "768P"
    assert "no longer makes 768P videos" in str(card.embeds)
    assert "never switches to another resolution" in str(card.embeds)
    assert balance.used == 0
    assert freepik.tasks == {} and len(freepik.requests_to("submit")) == 1


async def test_provider_correct_data_url_refusal_fails_over_to_the_next_image_provider(
    discord_sim, minimax, odkkk, tmp_path
) -> None:
    odkkk.inject("query", "image_processing")
    env = bot_env(
        discord_sim,
        tmp_path / "bot.sqlite3",
        HAILUO_PROVIDERS="odkkk,minimax",
        ODKKK_API_KEY=odkkk.api_key,
        ODKKK_BASE_URL=odkkk.api_base,
        **minimax_env(minimax),
    )
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "animate"], {"prompt": "waves"}, attachments={"image": picture()}
        )
        await inter.wait_response()
        await discord_sim.wait_for(lambda: channel(discord_sim).videos())
        await card_shows(discord_sim, inter.original_message, "Delivered")
        job = (await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, inter.user_id))[
            0
        ]
        ledger = await app.bot.desk.ledger.for_job(job.id)
    assert job.status is JobStatus.DELIVERED and job.provider == "minimax"
    assert job.provider_meta["given_up"] == ["odkkk"]
    assert len(odkkk.submits) == 1 and len(minimax.submits) == 1
    assert minimax.submits[0]["first_frame_image"].startswith("data:image/png;base64,")
    assert [e.kind.value for e in ledger] == ["reserve", "charge"]  # charged once
