"""The Discord simulator's rate limits, spoken to in raw HTTP: buckets, headers and 429s.

What the outbox is built against (``cogs/outbox.py``), so it is pinned here: 5 message
creates per 5 s per channel, edits counted apart under the same bucket hash, every answer
with real ``X-RateLimit-*`` headers, and a 429 shaped so discord.py waits and retries it
(JSON body, ``Via``, ``Retry-After``, ``X-RateLimit-Scope``). Windows run on the
simulator's injected clock, so the test moves time instead of waiting for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.discord_sim import DiscordSimulator
from tests.discord_sim.ratelimits import Limit, default_limits
from tests.support import FakeClock

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Bucket",
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # frozen: only the test moves it


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[DiscordSimulator]:
    # Discord's own 5 s windows (the suite's default runs them ten times faster).
    limits = default_limits(window=5.0)
    async with DiscordSimulator(
        clock=clock, global_limit=Limit(20, 1.0), rate_limits=limits
    ) as simulator:
        yield simulator
        assert simulator.internal_errors == []


@pytest.fixture
async def http(sim: DiscordSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bot {sim.token}"}
    async with aiohttp.ClientSession(sim.api_base + "/", headers=headers) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    async with http.request(method, path.lstrip("/"), json=body or {}) as resp:
        data = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, dict(resp.headers), data


async def test_outbox_sim_limits_creates_per_channel_with_real_headers(
    sim: DiscordSimulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    room = sim.guilds[0].channels[0].id
    answers = [
        await call(http, "POST", f"/channels/{room}/messages", {"content": "hi"}) for _ in range(5)
    ]
    assert [status for status, _, _ in answers] == [200] * 5
    for sent, (_, headers, _) in enumerate(answers, start=1):
        assert all(name in headers for name in RATE_HEADERS), headers
        assert headers["X-RateLimit-Limit"] == "5"
        assert headers["X-RateLimit-Remaining"] == str(5 - sent)
        assert 0 < float(headers["X-RateLimit-Reset-After"]) <= 5.0
    assert len({h["X-RateLimit-Bucket"] for _, h, _ in answers}) == 1

    status, headers, body = await call(
        http, "POST", f"/channels/{room}/messages", {"content": "6th"}
    )
    assert status == 429
    assert set(body) == {"message", "retry_after", "global"}
    assert body["global"] is False and 0 < body["retry_after"] <= 5.0
    assert headers["X-RateLimit-Scope"] == "user"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["Via"] and int(headers["Retry-After"]) >= 1
    assert len(sim.channel_messages(room)) == 5  # the refused one made nothing
    assert sim.rate_limit_hits == 1
    assert [c.path for c in sim.too_many_requests()] == [f"/channels/{room}/messages"]
    assert sim.invalid_requests() == 1

    clock.advance(body["retry_after"])
    status, headers, _ = await call(
        http, "POST", f"/channels/{room}/messages", {"content": "later"}
    )
    assert status == 200 and headers["X-RateLimit-Remaining"] == "4"


async def test_outbox_sim_counts_edits_apart_under_the_same_bucket_hash(
    sim: DiscordSimulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    room = sim.guilds[0].channels[0].id
    other = sim.dm_channel(sim.default_user.id).id
    created = [
        await call(http, "POST", f"/channels/{room}/messages", {"content": "c"}) for _ in range(5)
    ]
    message_id = created[0][2]["id"]
    edits = [
        await call(http, "PATCH", f"/channels/{room}/messages/{message_id}", {"content": str(n)})
        for n in range(6)
    ]
    assert [status for status, _, _ in edits] == [200] * 5 + [429]
    assert edits[0][1]["X-RateLimit-Bucket"] == created[0][1]["X-RateLimit-Bucket"]
    assert edits[0][1]["X-RateLimit-Remaining"] == "4"  # its own count, not the creates'
    # Another channel has buckets of its own.
    status, headers, _ = await call(http, "POST", f"/channels/{other}/messages", {"content": "x"})
    assert status == 200 and headers["X-RateLimit-Remaining"] == "4"
    # Other routes carry headers too, from a roomy bucket.
    status, headers, _ = await call(http, "GET", f"/channels/{room}")
    assert status == 200 and all(name in headers for name in RATE_HEADERS)


async def test_outbox_sim_global_limit_spares_interaction_routes(
    sim: DiscordSimulator, http: aiohttp.ClientSession
) -> None:
    answers = [await call(http, "GET", "/users/@me") for _ in range(21)]
    assert [status for status, _, _ in answers] == [200] * 20 + [429]
    status, headers, body = answers[-1]
    assert body["global"] is True
    assert headers["X-RateLimit-Global"] == "true" and headers["X-RateLimit-Scope"] == "global"
    # An interaction callback is not bound by the global limit: it gets its own answer.
    status, _, _ = await call(http, "POST", "/interactions/1/nope/callback", {"type": 4})
    assert status == 404


def test_outbox_sim_injected_429_carries_what_discord_py_needs() -> None:
    from tests.discord_sim.rest import fault_reply

    reply = fault_reply(429, None, None)
    assert reply.headers["Via"] and reply.headers["X-RateLimit-Scope"] == "user"
    assert set(reply.body) >= {"message", "retry_after", "global"}
