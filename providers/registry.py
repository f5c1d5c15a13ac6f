"""Every provider in one list: its adapter class and its capability, and building them.

Adding a provider is one file (``providers/<name>.py`` with its adapter class and its
``CAPABILITY``) plus one line in ``_MODULES`` below. The core never imports this module:
the wiring (``bot.py``, ``hailuo/cli.py``) hands ``TABLE`` to the validator and the
built adapters (each carries its ``capability``) to the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import aiohttp

from hailuo.model.camera import Spelling
from hailuo.model.capability import ProviderCapability, Table, WireNames
from hailuo.model.config import ProviderSettings
from hailuo.model.provider import Provider
from providers import demo, freepik, gptge, minimax, novita, odkkk
from providers.demo import DemoProvider

#: The paid providers, in their default failover order: one line each.
_MODULES = (minimax, freepik, novita, odkkk, gptge)

#: Provider name -> what it accepts (the demo renderer last). The validator reads this.
TABLE: Table = MappingProxyType({m.CAPABILITY.name: m.CAPABILITY for m in (*_MODULES, demo)})
#: Provider name -> how it spells a request.
SPELLINGS: Mapping[str, WireNames] = MappingProxyType(
    {name: cap.spelling for name, cap in TABLE.items()}
)
#: Provider name -> the camera spelling its endpoint understands (paid providers).
PROVIDER_SPELLING: Mapping[str, Spelling] = MappingProxyType(
    {m.CAPABILITY.name: m.CAPABILITY.spelling.camera for m in _MODULES}
)

#: Every adapter takes (session, *, api_key, base_url, timeout); Freepik also ``key_header``
#: (else picked from the host: ``x-magnific-api-key`` on magnific.com, ``x-freepik-api-key``).
ADAPTERS: dict[str, type[Any]] = {m.CAPABILITY.name: m.ADAPTER for m in _MODULES}


def spelling_for(provider: str) -> Spelling:
    """The camera spelling to send to ``provider``; ``KeyError`` for an unknown name."""
    try:
        return PROVIDER_SPELLING[provider]
    except KeyError:
        raise KeyError(f"no camera spelling for provider {provider!r}") from None


def capability(name: str) -> ProviderCapability:
    """``name``'s capability; ``KeyError`` for an unknown provider."""
    return TABLE[name]


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
