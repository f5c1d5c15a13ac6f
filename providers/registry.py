"""Build the configured providers, in failover order, from the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp

from hailuo.settings import ProviderSettings
from providers.base import Provider
from providers.demo import DemoProvider
from providers.freepik import FreepikProvider
from providers.gptge import GptGeProvider
from providers.minimax import MiniMaxProvider
from providers.novita import NovitaProvider
from providers.odkkk import OdkkkProvider

#: (session, api_key, base_url) -> adapter. Freepik picks its key header from the host
#: (``x-magnific-api-key`` on magnific.com, else ``x-freepik-api-key``).
_Factory = Callable[[aiohttp.ClientSession, str, str], Provider]
_FACTORIES: dict[str, _Factory] = {
    "minimax": lambda s, key, url: MiniMaxProvider(s, api_key=key, base_url=url),
    "freepik": lambda s, key, url: FreepikProvider(s, api_key=key, base_url=url),
    "novita": lambda s, key, url: NovitaProvider(s, api_key=key, base_url=url),
    "odkkk": lambda s, key, url: OdkkkProvider(s, api_key=key, base_url=url),
    "gptge": lambda s, key, url: GptGeProvider(s, api_key=key, base_url=url),
}


def build_providers(
    configured: tuple[ProviderSettings, ...], session: aiohttp.ClientSession
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
        factory = _FACTORIES.get(entry.name)
        if factory is None:
            raise NotImplementedError(f"provider {entry.name} has no adapter yet")
        if entry.name == "freepik" and entry.key_header:
            built[entry.name] = FreepikProvider(
                session,
                api_key=entry.api_key.reveal(),
                base_url=entry.base_url,
                key_header=entry.key_header,
            )
            continue
        built[entry.name] = factory(session, entry.api_key.reveal(), entry.base_url)
    return built
