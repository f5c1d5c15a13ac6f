"""Where the bot's HTTP connections to Discord go, and their pool: bounded, kept alive, reused.

discord.py's own connector has no bound (``limit=0``), so a burst of 200 slash
commands opens 200 new connections at once to answer them, each with its socket,
its connect and (on the real Discord) its TLS handshake, all on the event loop
before the answers can go. A pool of ``DISCORD_REST_CONNECTIONS`` per host answers
the same burst over a few warm connections, one request after another on each: in
``bench.answer`` the 200-burst's p99 fell from 1.33-1.41 x the bare client's to
1.01-1.16 x in five runs after it landed.

An upload holds its connection while it is sent; the worker runs at most 16 steps at once
(``hailuo.jobs.steps``), so a slow upload of every one of them still leaves half the
default pool to the answers and the cards.

A gateway shard's websocket holds a connection of its host for as long as it is
connected. Discord's gateway is another host than its REST API, but an API proxy or
the simulator may serve both: then each shard of this process gets a connection of
its own above the REST ones (``hold_for_gateway``), so the shards never take the
connections the answers need.
"""

from __future__ import annotations

import aiohttp
import discord
import yarl

from hailuo.settings import Settings


def point_discord_at(settings: Settings) -> None:
    """Aim discord.py at the configured REST and gateway (an API proxy or the simulator)."""
    discord.http.Route.BASE = settings.discord_api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def discord_connector(settings: Settings) -> DiscordConnector:
    """The pool the client's REST calls and gateway share (created on the running loop)."""
    shards = settings.shard_ids or range(settings.shard_count or 0)
    return DiscordConnector(
        settings.discord_rest_connections,
        gateway_shares_host=same_host(settings.discord_api_base_url, settings.discord_gateway_url),
        shards=len(shards),
    )


def same_host(rest_url: str, gateway_url: str) -> bool:
    """Whether the gateway's websockets go to the host and port of the REST calls."""
    rest, gateway = yarl.URL(rest_url), yarl.URL(gateway_url)
    return (rest.host, rest.port) == (gateway.host, gateway.port)


class DiscordConnector(aiohttp.TCPConnector):
    """At most ``rest`` connections per host for REST calls (0: no bound, discord.py's
    own behaviour), plus one per shard when the gateway shares the REST host."""

    def __init__(self, rest: int, *, gateway_shares_host: bool, shards: int = 0) -> None:
        self.rest = rest
        self.gateway_shares_host = gateway_shares_host
        super().__init__(limit=0, limit_per_host=self._bound(shards))

    def hold_for_gateway(self, shards: int) -> None:
        """The number of shards this process connects is known (Discord's recommendation
        once asked): keep a connection for each above the REST ones."""
        # aiohttp reads the bound at every acquire and offers no setter for it.
        self._limit_per_host = self._bound(shards)

    def _bound(self, shards: int) -> int:
        if self.rest == 0:
            return 0
        return self.rest + (shards if self.gateway_shares_host else 0)
