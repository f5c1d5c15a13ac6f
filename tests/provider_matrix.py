"""The five providers, each with its simulator and adapter, for tests that run them all alike."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from providers.base import Provider
from providers.freepik import FreepikProvider
from providers.gptge import GptGeProvider
from providers.minimax import MiniMaxProvider
from providers.novita import NovitaProvider
from providers.odkkk import OdkkkProvider
from storage.db import Database
from storage.ledger import LedgerRepository
from tests.core import Core, build_core
from tests.sims.freepik import FreepikSimulator
from tests.sims.gptge import GptGeSimulator
from tests.sims.minimax import MiniMaxSimulator
from tests.sims.novita import NovitaSimulator
from tests.sims.odkkk import OdkkkSimulator
from tests.support import FakeClock


@dataclass(frozen=True)
class Entry:
    simulator: type[Any]
    adapter: Callable[..., Provider]
    moderation_fault: tuple[str, str]  # (endpoint, fault) the provider uses to refuse content
    #: What that refusal reads as: Freepik documents no reason, so its refusal is a plain failure.
    moderation_rule: str = "provider.moderation"

    def base_url(self, sim: Any) -> str:
        return str(getattr(sim, "api_base", sim.base_url))


PROVIDERS: dict[str, Entry] = {
    "minimax": Entry(MiniMaxSimulator, MiniMaxProvider, ("query", "generation_failed")),
    "freepik": Entry(
        FreepikSimulator, FreepikProvider, ("query", "moderation"), "provider.unavailable"
    ),
    "novita": Entry(NovitaSimulator, NovitaProvider, ("query", "moderation")),
    "odkkk": Entry(OdkkkSimulator, OdkkkProvider, ("query", "moderation")),
    "gptge": Entry(GptGeSimulator, GptGeProvider, ("query", "generation_failed")),
}


@contextlib.asynccontextmanager
async def provider_core(
    name: str, db: Database, clock: FakeClock, **sim_options: Any
) -> AsyncIterator[tuple[Any, Core]]:
    """A started simulator and the real job core wired to that provider's adapter."""
    entry = PROVIDERS[name]
    async with entry.simulator(clock=clock, **sim_options) as sim:
        async with aiohttp.ClientSession() as session:
            adapter = entry.adapter(session, api_key=sim.api_key, base_url=entry.base_url(sim))
            yield sim, build_core(db, clock, session, {name: adapter})
        assert sim.violations == []
        assert sim.download_auth_headers_seen == []


async def ledger_kinds(db: Database, job_id: int) -> list[str]:
    return [e.kind.value for e in await LedgerRepository(db).for_job(job_id)]
