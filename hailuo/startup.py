"""What the bot says when it cannot start, and the log lines it does not need.

Why a module of its own: a newcomer's first start fails on a setting (a busy port, a
Discord host that does not resolve, a copied ``.env.example``), and the OS's words
("Name or service not known") do not say which. ``bot.py`` turns the exception into
one sentence naming the setting with :func:`start_failure`. No discord import here:
discord.py's voice warnings are dropped by a logging filter on its logger's name.
"""

from __future__ import annotations

import errno
import logging
import socket
from urllib.parse import urlsplit

from hailuo.settings import Settings


def _dns_failure(exc: BaseException) -> bool:
    """A host name that did not resolve, however aiohttp wrapped it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def start_failure(exc: OSError, settings: Settings) -> str:
    """One sentence naming the setting behind a start failure, not just the OS's words.

    The health server binds before Discord is called, so a busy address is one of the
    bot's own ports; a name that does not resolve is Discord's host (the only one
    reached before the bot is up).
    """
    if exc.errno == errno.EADDRINUSE:
        ports = f"HAILUO_HTTP_PORT ({settings.http_port})"
        if settings.public_url:
            ports += f" or HAILUO_METRICS_PORT ({settings.metrics_port})"
        return (
            f"the port is already in use: set {ports} to a free port "
            "or stop the program that holds it."
        )
    if _dns_failure(exc):
        host = urlsplit(settings.discord_api_base_url).hostname
        return (
            f"cannot resolve {host}, the host of Discord's URL {settings.discord_api_base_url}: "
            "check the network (DNS) or DISCORD_API_BASE_URL."
        )
    return f"{exc.strerror or exc}."


#: Discord's gateway close codes about shards, and what the owner changes for each.
_SHARD_REFUSALS = {
    4010: (
        "Discord refused a shard number: HAILUO_SHARD_IDS must name shards below "
        "HAILUO_SHARD_COUNT, and every process must be given the same HAILUO_SHARD_COUNT."
    ),
    4011: (
        "Discord requires more shards for this many servers: raise HAILUO_SHARD_COUNT "
        "(and split the new range over the processes), or unset it to use Discord's "
        "recommendation."
    ),
}


def shard_refusal(code: int | None) -> str | None:
    """The sentence for a gateway close about shards (None: not one of those)."""
    return _SHARD_REFUSALS.get(code or 0)


class _NoVoiceWarning(logging.Filter):
    """Drops discord.py's "voice will NOT be supported" lines: the bot never joins voice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


def silence_voice_warnings() -> None:
    """PyNaCl and davey are voice libraries this bot does not need, so say nothing of them."""
    logging.getLogger("discord.client").addFilter(_NoVoiceWarning())
