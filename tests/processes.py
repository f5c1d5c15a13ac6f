"""Two bot processes on one database, in one test: two ``Database`` connections to one
SQLite file (WAL), each with the bot's own core and its own process id."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from hailuo.jobs.resilience import Resilience
from hailuo.jobs.worker import WorkerConfig
from hailuo.model.provider import Provider
from hailuo.money.quotas import QuotaPolicy
from providers.minimax import MiniMaxProvider
from storage.db import Database
from tests.core import Core, build_core
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock, RecordingNotifier

LEASE = 60.0


@dataclass
class Process:
    """One process's database connection and core."""

    name: str
    db: Database
    core: Core


@contextlib.asynccontextmanager
async def two_processes(
    path: Path,
    clock: FakeClock,
    sim: MiniMaxSimulator,
    *,
    caps: dict[str, int | None] | None = None,
    policy: QuotaPolicy | None = None,
    notifiers: tuple[RecordingNotifier, RecordingNotifier] | None = None,
    providers: tuple[Provider | None, Provider | None] = (None, None),
) -> AsyncIterator[tuple[Process, Process]]:
    """Processes ``a`` and ``b`` sharing ``path``, both sending to ``sim`` (as MiniMax)."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        pair = []
        for index, name in enumerate(("a", "b")):
            db = await Database.open(path)
            stack.push_async_callback(_close, db)
            provider = providers[index] or MiniMaxProvider(
                session, api_key="mm-test-key", base_url=sim.base_url
            )
            core = build_core(
                db,
                clock,
                session,
                {"minimax": provider},
                notifier=notifiers[index] if notifiers else None,
                policy=policy,
                config=WorkerConfig(poll_seconds=5, process_id=name, lease_seconds=LEASE),
                # Each process builds its own limiter from the same settings.
                resilience=Resilience(clock, ["minimax"], caps=caps) if caps else None,
            )
            pair.append(Process(name, db, core))
        yield pair[0], pair[1]


async def _close(db: Database) -> None:
    with contextlib.suppress(ValueError):  # closed already: a test's "dead" process
        await db.close()
