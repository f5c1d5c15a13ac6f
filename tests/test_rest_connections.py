"""The bot's connections to Discord (``cogs.connections``): a burst of commands is answered
over a bounded pool of kept-alive connections, not a new connection per answer, and gateway
shards that share the REST host never take the connections the answers need."""

from __future__ import annotations

import asyncio

import pytest

from cogs.connections import DiscordConnector, same_host
from tests.discord_sim import DiscordSimulator
from tests.e2e import running_bot

BURST = 24


async def burst_of_quota_answers(sim: DiscordSimulator) -> set[tuple[str, int] | None]:
    """``BURST`` members ask ``/hailuo quota`` at once; each is answered. The connections
    the answers came on."""
    inters = [await sim.send_slash(["hailuo", "quota"], user_id=7_000 + n) for n in range(BURST)]
    await asyncio.gather(*(inter.wait_response() for inter in inters))
    assert all(inter.ephemeral for inter in inters)
    return {c.peer for c in sim.find_calls("POST", "/callback$")}


async def test_rest_connections_a_burst_is_answered_over_the_bounded_pool(
    discord_sim: DiscordSimulator, env: dict[str, str]
) -> None:
    async with running_bot({**env, "DISCORD_REST_CONNECTIONS": "3"}):
        peers = await burst_of_quota_answers(discord_sim)
    assert None not in peers
    assert len(peers) <= 3


async def test_rest_connections_zero_is_unbounded_as_discord_py_is(
    discord_sim: DiscordSimulator, env: dict[str, str]
) -> None:
    """The contrast: without the bound the same burst opens more connections than 3."""
    async with running_bot({**env, "DISCORD_REST_CONNECTIONS": "0"}):
        peers = await burst_of_quota_answers(discord_sim)
    assert len(peers) > 3


@pytest.mark.parametrize("configured", [True, False], ids=["set", "recommended"])
async def test_rest_connections_shards_on_the_rest_host_keep_their_own(
    discord_sim: DiscordSimulator, env: dict[str, str], configured: bool
) -> None:
    """One REST connection, three shards whose gateway is the REST host (the simulator's,
    or an API proxy's): every shard connects and the commands are still answered. Without a
    connection of their own the shards would hold the only one, and the bot never get ready.
    The count comes from the settings, or from Discord's recommendation at launch."""
    discord_sim.shard_count = 3
    extra = {"HAILUO_SHARD_COUNT": "3"} if configured else {}
    async with running_bot(
        {**env, "DISCORD_REST_CONNECTIONS": "1", **extra}, identify_spacing=0
    ) as app:
        assert sorted(app.bot.shards) == [0, 1, 2]
        peers = await burst_of_quota_answers(discord_sim)
    assert len(peers) == 1


def test_rest_connections_bound_counts_shards_only_on_the_rest_host() -> None:
    assert not same_host("https://discord.com/api/v10", "wss://gateway.discord.gg/")
    assert same_host("http://127.0.0.1:8080/api/v10", "ws://127.0.0.1:8080/")
    assert not same_host("http://127.0.0.1:8080/api/v10", "ws://127.0.0.1:8081/")


async def test_rest_connections_pool_bound() -> None:
    apart = DiscordConnector(32, gateway_shares_host=False, shards=4)
    shared = DiscordConnector(32, gateway_shares_host=True, shards=4)
    unbounded = DiscordConnector(0, gateway_shares_host=True, shards=4)
    try:
        assert (apart.limit_per_host, shared.limit_per_host) == (32, 36)
        assert unbounded.limit_per_host == 0
        shared.hold_for_gateway(10)
        apart.hold_for_gateway(10)
        assert (apart.limit_per_host, shared.limit_per_host) == (32, 42)
        assert apart.limit == shared.limit == 0  # other hosts (providers' CDNs) unbounded
    finally:
        for connector in (apart, shared, unbounded):
            await connector.close()
