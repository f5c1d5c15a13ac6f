"""A busy channel under bad weather, through the real discord.py client and the simulators.

50 ``/hailuo text`` jobs from 25 members in one channel, while every provider call (submit,
query, result look-up, download) fails at random: 30 % HTTP 500s and 10 % of the provider's
own rate-limit answers (``SimServer.chaos``, seeded). The Discord simulator enforces 5 message
creates and 5 edits per 5 s per channel and answers 429 past them. Every job must be
delivered exactly once, none refunded, each submitted once, and Discord's 429s must stay at
most one per 100 messages. The same for every provider.

Everything runs ``SPEED`` times faster than real time, with the same shapes: the bot's
own clock (injected, as in ``bot.application(clock=...)``), so the provider back-offs,
circuit pauses and retry schedules the faults cause pass in a fraction of their real
length, and Discord's windows (5 creates and 5 edits per 5 s become per 0.5 s), whose
``Reset-After`` headers discord.py sleeps by. The rules the bot applies are the same,
only its seconds are shorter; ``bench/channel.py`` measures the same run on real time.

The test prints what it measured (run with ``-s``): how long the 50 deliveries took in the
channel, the messages and 429s, and what the outbox coalesced.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
import pytest

from hailuo.model.status import JobStatus
from storage.ledger import LedgerRepository
from tests.discord_sim import DiscordSimulator, SimInteraction
from tests.discord_sim.ratelimits import Limit, default_limits
from tests.e2e import bot_env, channel, running_bot
from tests.sims.minimax import MiniMaxSimulator
from tests.test_e2e_providers import SIMULATORS, provider_env

pytestmark = pytest.mark.timeout(600)

MEMBERS = 25
JOBS_PER_MEMBER = 2
SEED = 20261207
SPEED = 10.0
MESSAGE_ROUTES = re.compile(r"^/channels/\d+/messages(/\d+)?$")


class FastClock:
    """Real time from now on, ``speed`` times faster (the bot's injected clock)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.start = time.time()

    def __call__(self) -> float:
        return self.start + (time.time() - self.start) * self.speed


def card_ended(inter: SimInteraction) -> bool:
    card = inter.original_message
    text = str(card.embeds) if card is not None else ""
    return "Delivered" in text or "refunded" in text


@pytest.mark.parametrize("name", list(SIMULATORS))
async def test_busy_channel_delivers_every_job_once(name: str, tmp_path: Path) -> None:
    window = 5.0 / SPEED  # Discord's 5 s, at the run's speed
    limits = default_limits(
        creates=Limit(5, window, bucket="messages"), edits=Limit(5, window, bucket="messages")
    )
    async with DiscordSimulator(rate_limits=limits) as discord_sim:
        await _busy_channel(name, discord_sim, tmp_path)
        assert discord_sim.internal_errors == []


async def _busy_channel(name: str, discord_sim: DiscordSimulator, tmp_path: Path) -> None:
    provider = SIMULATORS[name]()
    await provider.start()
    try:
        faults = provider.chaos(seed=SEED, errors=0.3, rate_limits=0.1)
        env = bot_env(
            discord_sim,
            tmp_path / "bot.sqlite3",
            **provider_env(name, provider),
        )
        room = channel(discord_sim)
        members = [7_000_000 + n for n in range(MEMBERS)]
        async with running_bot(env, clock=FastClock(SPEED)) as app:
            interactions: list[SimInteraction] = []
            for turn in range(JOBS_PER_MEMBER):
                for member in members:
                    interactions.append(
                        await discord_sim.send_slash(
                            ["hailuo", "text"],
                            {"prompt": f"a lighthouse, take {turn} by {member}"},
                            user_id=member,
                            channel_id=room.channel_id,
                        )
                    )
            for inter in interactions:
                await inter.wait_response()
                assert inter.original_message is not None, inter.response_data
            await discord_sim.wait_for(
                lambda: all(card_ended(i) for i in interactions), timeout=540
            )
            jobs = [
                job
                for member in members
                for job in await app.bot.desk.jobs.recent_for_member(
                    discord_sim.guilds[0].id, member
                )
            ]
            ledger = LedgerRepository(app.bot.services.db)
            entries = {job.id: [e.kind.value for e in await ledger.for_job(job.id)] for job in jobs}
            outbox = app.bot.outbox
            await asyncio.wait_for(outbox.drained(), timeout=30)
            stats = outbox.stats
    finally:
        await provider.close()

    # What it took, printed first so a failing run still says it (pytest -s).
    videos = room.videos()
    messages = [
        c
        for c in discord_sim.calls
        if c.ok and c.method in ("POST", "PATCH") and MESSAGE_ROUTES.match(c.path)
    ]
    too_many = discord_sim.too_many_requests()
    times = sorted(m.created_at for m in videos) or [0.0]
    unfinished = [(j.id, j.status.value) for j in jobs if j.status is not JobStatus.DELIVERED]
    print(
        f"\n[busy_channel {name}] {len(videos)} deliveries in one channel took "
        f"{times[-1] - times[0]:.1f} s (first to last); {len(messages)} messages created "
        f"or edited, {len(too_many)} answered 429; outbox: {stats.posts} posts, "
        f"{stats.edits} edits, {stats.superseded} superseded, {stats.rate_limited} waited; "
        f"provider faults: {dict(faults)}; not delivered: {unfinished}"
    )

    # Discord's 429s stay rare: at most one per 100 messages created or edited.
    assert len(too_many) * 100 <= len(messages), [(c.method, c.path) for c in too_many]

    # Every job delivered once, none refunded, each submitted once.
    assert len(jobs) == MEMBERS * JOBS_PER_MEMBER
    assert {job.status for job in jobs} == {JobStatus.DELIVERED}, unfinished
    assert all(kinds == ["reserve", "charge"] for kinds in entries.values()), entries
    assert len(videos) == len(jobs)
    for job in jobs:
        posts = [m for m in room.bot_messages() if f"(job #{job.id})" in m.content]
        assert [m.id for m in posts] == [job.delivered_message_id], job.id
        assert str(job.user_id) in posts[0].content  # the member is mentioned
    assert len(provider.submits) == len(jobs)
    assert len({job.provider_task_id for job in jobs}) == len(jobs)

    # The weather was as bad as promised.
    assert faults["errors"] > 0
    assert faults["rate_limits"] > 0


async def test_busy_channel_chaos_is_seeded_and_hits_every_endpoint() -> None:
    """The weather itself: the shares asked for, the same faults for the same seed."""

    async def statuses(seed: int) -> tuple[list[int], dict[str, int]]:
        async with MiniMaxSimulator() as sim, aiohttp.ClientSession() as http:
            faults = sim.chaos(seed=seed, errors=0.3, rate_limits=0.1)
            url = sim.signed_url(sim.publish(b"video"))
            seen = []
            for _ in range(400):
                async with http.get(url) as resp:
                    seen.append(resp.status)
            return seen, dict(faults)

    first, faults = await statuses(7)
    again, _ = await statuses(7)
    assert first == again
    assert 0.2 < first.count(500) / len(first) < 0.4
    assert 0.05 < first.count(429) / len(first) < 0.15
    assert first.count(200) + first.count(500) + first.count(429) == len(first)
    assert faults["errors"] == faults["http_500"] == first.count(500)
    assert faults["rate_limits"] == faults["http_429"] == first.count(429)
