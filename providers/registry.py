"""Build the configured providers, in failover order, from the settings."""

from __future__ import annotations

import aiohttp

from hailuo.settings import ProviderSettings
from providers.base import Provider
from providers.minimax import MiniMaxProvider


def build_providers(
    configured: tuple[ProviderSettings, ...], session: aiohttp.ClientSession
) -> dict[str, Provider]:
    built: dict[str, Provider] = {}
    for entry in configured:
        if entry.api_key is None:
            continue
        if entry.name == "minimax":
            built[entry.name] = MiniMaxProvider(
                session, api_key=entry.api_key.reveal(), base_url=entry.base_url
            )
        else:
            raise NotImplementedError(f"provider {entry.name} has no adapter yet")
    return built
