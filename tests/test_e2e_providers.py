"""Every provider end to end through the Discord simulator: each mode, and each fault's ending.

A fault ends in one of two ways a member can see: the video is delivered (the
bot retried, waited, or fetched a fresh link), or the status card says why it
failed and that the credits were refunded. Never a job left hanging.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hailuo.model.status import JobStatus
from storage.ledger import LedgerRepository
from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment
from tests.e2e import Channel, bot_env, channel, running_bot
from tests.sims.freepik import FreepikSimulator
from tests.sims.gptge import GptGeSimulator
from tests.sims.minimax import MiniMaxSimulator
from tests.sims.novita import NovitaSimulator
from tests.sims.odkkk import OdkkkSimulator

pytestmark = pytest.mark.timeout(60)

SIMULATORS: dict[str, type[Any]] = {
    "minimax": MiniMaxSimulator,
    "freepik": FreepikSimulator,
    "novita": NovitaSimulator,
    "odkkk": OdkkkSimulator,
    "gptge": GptGeSimulator,
}

#: Faults from the issue, per provider: (endpoint, fault name, how it must end).
COMMON = [
    ("submit", "http_500", "delivered"),
    ("query", "http_503", "delivered"),
    ("submit", "http_429", "delivered"),
    ("query", "malformed_json", "delivered"),
    ("download", "expired_url", "delivered"),
    ("submit", "accept_then_drop", "refunded"),
    ("submit", "hang", "refunded"),  # the body may have landed: never resent
    ("query", "hang", "delivered"),
    ("query", "generation_failed", "refunded"),
]
OWN = {
    "minimax": [
        ("submit", "rate_limit", "delivered"),
        ("submit", "no_balance", "refunded"),
        ("submit", "sensitive_prompt", "refunded"),
    ],
    "freepik": [
        ("submit", "http_503_rate", "delivered"),
        ("submit", "http_402", "refunded"),
        ("query", "moderation", "refunded"),
    ],
    "novita": [
        ("submit", "no_balance", "refunded"),
        ("query", "moderation", "refunded"),
    ],
    "odkkk": [
        ("submit", "http_402", "refunded"),
        ("query", "moderation", "refunded"),
    ],
    "gptge": [
        ("submit", "rate_limit", "delivered"),
        ("submit", "no_balance", "refunded"),
        ("submit", "sensitive_prompt", "refunded"),
    ],
}
#: odkkk's result URL is the file itself and cannot be renewed: a dead link ends the delivery.
ENDINGS = {("odkkk", "download", "expired_url"): "refunded"}
FAULT_CASES = [
    pytest.param(
        name,
        endpoint,
        fault,
        ENDINGS.get((name, endpoint, fault), ending),
        id=f"{name}-{endpoint}-{fault}",
    )
    for name in SIMULATORS
    for endpoint, fault, ending in COMMON + OWN[name]
]


@dataclass
class World:
    discord: DiscordSimulator
    provider: Any
    env: dict[str, str]

    @property
    def room(self) -> Channel:
        return channel(self.discord)


def provider_env(name: str, sim: Any) -> dict[str, str]:
    base = sim.api_base if name == "odkkk" else sim.base_url
    return {
        "HAILUO_PROVIDERS": name,
        f"{name.upper()}_API_KEY": sim.api_key,
        f"{name.upper()}_BASE_URL": base,
    }


@pytest.fixture(params=list(SIMULATORS))
def provider_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def open_world(name: str, discord_sim: DiscordSimulator, tmp_path: Path):
    sim = SIMULATORS[name]()
    await sim.start()
    env = bot_env(discord_sim, tmp_path / "bot.sqlite3", **provider_env(name, sim))
    return World(discord_sim, sim, env)


async def close_world(world: World) -> None:
    await world.provider.close()
    assert world.provider.violations == []
    assert world.provider.download_auth_headers_seen == []
    assert world.provider.urls_with_key() == []


def image(width: int = 640, height: int = 480) -> SimAttachment:
    data = media.make_image("PNG", width, height)
    return SimAttachment(data, "frame.png", "image/png", width, height, len(data))


async def card_text(world: World, inter) -> str:
    await inter.wait_response()
    card = inter.original_message
    assert card is not None, inter.response_data
    return await world.discord.wait_for(
        lambda: (
            str(card.embeds)
            if any(word in str(card.embeds) for word in ("Delivered", "refunded"))
            else None
        ),
        timeout=45,
    )


MODES = {
    "text": (["hailuo", "text"], {"prompt": "a lighthouse in a storm [Push in]"}, {}),
    "image": (["hailuo", "animate"], {"prompt": "waves roll in"}, {"image": image()}),
    "first_last": (
        ["hailuo", "animate"],
        {"prompt": "day turns to night"},
        {"image": image(), "last_frame": image(600, 450)},
    ),
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_each_mode_is_delivered(provider_name, mode, discord_sim, tmp_path) -> None:
    world = await open_world(provider_name, discord_sim, tmp_path)
    try:
        path, options, attachments = MODES[mode]
        async with running_bot(world.env):
            inter = await discord_sim.send_slash(path, options, attachments=attachments)
            assert "Delivered" in await card_text(world, inter)
            videos = world.room.videos()
            assert len(videos) == 1
            assert videos[0].attachments[0].data == world.provider.video
        assert len(world.provider.submits) == 1
        body = world.provider.submits[0]
        if mode == "text":
            assert "[Push in]" in str(body) or "[推进]" in str(body)
        else:
            images = [v for v in _strings(body) if v.startswith("data:image/") or len(v) > 500]
            assert len(images) == (2 if mode == "first_last" else 1)
    finally:
        await close_world(world)


@pytest.mark.parametrize(("name", "endpoint", "fault", "ending"), FAULT_CASES)
async def test_each_fault_ends_delivered_or_refunded(
    name, endpoint, fault, ending, discord_sim, tmp_path
) -> None:
    world = await open_world(name, discord_sim, tmp_path)
    try:
        world.provider.inject(endpoint, fault)
        async with running_bot(world.env) as app:
            inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a calm sea"})
            text = await card_text(world, inter)
            jobs = await app.bot.desk.jobs.recent_for_member(
                discord_sim.guilds[0].id, inter.user_id
            )
            job = jobs[0]
            entries = [
                e.kind.value for e in await LedgerRepository(app.bot.services.db).for_job(job.id)
            ]
        if ending == "delivered":
            assert "Delivered" in text
            assert len(world.room.videos()) == 1
            assert entries == ["reserve", "charge"]
        else:
            assert "refunded" in text and "Failed:" in text
            assert world.room.videos() == []
            assert entries == ["reserve", "refund"]
            assert job.status in (JobStatus.FAILED, JobStatus.DELIVERY_FAILED)
        assert len(world.provider.submits) <= 1
    finally:
        await close_world(world)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
