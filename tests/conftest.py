from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.db import Database
from storage.opening import AnyDatabase, open_storage
from tests.discord_sim import DiscordSimulator, ratelimits
from tests.e2e import SimSetup, bot_env, minimax_env
from tests.pg_server import BOTH_ENGINES as BOTH_ENGINES
from tests.pg_server import PgServer
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock

# Discord's message windows ten times faster for the suite (5 per 0.5 s, same shape):
# a test not about rate limits need not wait out real windows. The rate-limit tests
# pass the real 5 s; bench/channel.py measures on Discord's own time.
ratelimits.MESSAGE_WINDOW = 0.5


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- storage: SQLite, and PostgreSQL for the contract tests ------------------------------------
#
# A module that sets ``ENGINES = BOTH_ENGINES`` runs each test that uses ``db`` once per
# engine, named ``[sqlite]`` and ``[postgresql]`` (``pytest -k postgresql`` picks the latter).


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: about SQLite itself (its file, its pragmas): one engine only"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    engines = getattr(metafunc.module, "ENGINES", None)
    if metafunc.definition.get_closest_marker("sqlite_only"):
        engines = None
    if engines and "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", engines)


@pytest.fixture
def engine() -> str:
    """The storage engine of ``db``: SQLite unless the module asks for both."""
    return "sqlite"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """This worker's PostgreSQL server, started on first use and stopped at the end."""
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_url(pg_server: PgServer) -> AsyncIterator[str]:
    """A fresh migrated PostgreSQL database of its own, dropped after the test."""
    name, url = await pg_server.create_database()
    yield url
    await pg_server.drop_database(name)


@pytest.fixture
async def db_target(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str | Path]:
    """Where ``db`` lives: a SQLite path, or the URL of a fresh PostgreSQL database (dropped
    after the test). A test opens a second handle on it (a second process) with it."""
    if engine != "postgresql":
        yield tmp_path / "hailuo.sqlite3"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name, url = await server.create_database()
    yield url
    await server.drop_database(name)


@pytest.fixture
async def db(db_target: str | Path) -> AsyncIterator[Database]:
    database: AnyDatabase = await open_storage(db_target)
    yield database  # type: ignore[misc]  # either engine: the tests are typed for SQLite's
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
