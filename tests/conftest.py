from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from tests.discord_sim import DiscordSimulator, ratelimits
from tests.e2e import SimSetup, bot_env, minimax_env
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock

# Discord's message windows ten times faster for the suite (5 per 0.5 s, same shape):
# a test not about rate limits need not wait out real windows. The rate-limit tests
# pass the real 5 s; bench/channel.py measures on Discord's own time.
ratelimits.MESSAGE_WINDOW = 0.5


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "hailuo.sqlite3")
    yield database
    await database.close()


# -- end to end: the real bot against the Discord and MiniMax simulators --------------------


@pytest.fixture
def sim_setup() -> SimSetup:
    """The simulators' defaults; a module defines its own ``sim_setup`` to change them."""
    return SimSetup()


@pytest.fixture
async def discord_sim(sim_setup: SimSetup) -> AsyncIterator[DiscordSimulator]:
    async with DiscordSimulator(guilds=sim_setup.guilds) as sim:
        yield sim
        assert sim.internal_errors == []


@pytest.fixture
async def minimax(sim_setup: SimSetup) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(**sim_setup.minimax) as sim:
        yield sim
        assert sim.violations == []
        assert sim.download_auth_headers_seen == []
        assert sim.urls_with_key() == []


@pytest.fixture
def env(discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, tmp_path: Path) -> dict[str, str]:
    return bot_env(discord_sim, tmp_path / "bot.sqlite3", **minimax_env(minimax))
