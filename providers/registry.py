"""Build the configured providers, in failover order, from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from hailuo.settings import ProviderSettings
from providers.base import Provider
from providers.demo import DemoProvider
from providers.freepik import FreepikProvider
from providers.gptge import GptGeProvider
from providers.minimax import MiniMaxProvider
from providers.novita import NovitaProvider
from providers.odkkk import OdkkkProvider

#: Every adapter takes (session, *, api_key, base_url, timeout); Freepik also ``key_header``
#: (else picked from the host: ``x-magnific-api-key`` on magnific.com, ``x-freepik-api-key``).
ADAPTERS: dict[str, type[Any]] = {
    "minimax": MiniMaxProvider,
    "freepik": FreepikProvider,
    "novita": NovitaProvider,
    "odkkk": OdkkkProvider,
    "gptge": GptGeProvider,
}


def request_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """One provider call's limits: the whole call, and the connect within it."""
    return aiohttp.ClientTimeout(total=seconds, connect=min(10.0, seconds))


def build_providers(
    configured: tuple[ProviderSettings, ...],
    session: aiohttp.ClientSession,
    *,
    timeout_seconds: float = 30.0,
) -> dict[str, Provider]:
    built: dict[str, Provider] = {}
    for entry in configured:
        if entry.name == "demo":
            # No key: renders locally; the bot's own HTTP server serves the files.
            built[entry.name] = DemoProvider(
                directory=entry.directory or Path("data/demo"), base_url=entry.base_url
            )
            continue
        if entry.api_key is None:
            continue
        adapter = ADAPTERS.get(entry.name)
        if adapter is None:
            raise NotImplementedError(f"provider {entry.name} has no adapter")
        options: dict[str, Any] = {"timeout": request_timeout(timeout_seconds)}
        if entry.key_header:
            options["key_header"] = entry.key_header
        built[entry.name] = adapter(
            session, api_key=entry.api_key.reveal(), base_url=entry.base_url, **options
        )
    return built
