"""``python -m hailuo doctor``: is every configured piece reachable, with the keys given?

``doctor`` loads the settings, opens the database, lists the bot's missing
permissions in each channel a server configured (``hailuo.jobs.channel_check``, when
it can read them), and for each configured provider makes one cheap
authenticated call that starts no generation: a
status query of a task that does not exist. A provider that checks the key
first answers "bad key" (MiniMax 1004/2049, HTTP 401/403) or "no such task"
(MiniMax 2013, HTTP 404): the second means the key was accepted. An adapter
may offer ``balance()`` (an async method returning a short text) to fill the
balance column; none of the five documents a balance endpoint yet.

Like ``hailuo/cli.py`` and ``bot.py`` this is wiring: it builds the providers itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import TextIO

import aiohttp

from hailuo.jobs.channel_check import check_channels
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Provider
from hailuo.settings import DEMO, PROVIDER_NAMES, Settings
from providers.demo import ffmpeg_path
from providers.registry import build_providers
from storage.channels import ConfiguredChannel, configured_channels
from storage.opening import DatabaseOpenError, open_storage
from storage.postgres import redacted

log = logging.getLogger(__name__)

#: A task id no provider has issued (the nil UUID): querying it costs nothing.
PROBE_TASK_ID = "00000000-0000-0000-0000-000000000000"


# -- doctor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    reachable: str
    key_accepted: str
    balance: str = "not reported"


async def probe(provider: Provider) -> Probe:
    """One cheap authenticated call that starts no generation, read as a health verdict."""
    try:
        await provider.query(PROBE_TASK_ID, {})
    except ProviderError as exc:
        verdicts = {
            ProviderErrorKind.AUTH: Probe("yes", "NO (rejected)"),
            ProviderErrorKind.BALANCE: Probe("yes", "yes", "EMPTY"),
            ProviderErrorKind.UNAVAILABLE: Probe("NO", "unknown"),
            ProviderErrorKind.UNKNOWN_OUTCOME: Probe("NO", "unknown"),
            ProviderErrorKind.BAD_REPLY: Probe("yes", "unknown"),
            ProviderErrorKind.RATE_LIMITED: Probe("yes", "yes (rate limited)"),
        }
        # Not found / invalid: the provider read the key and then looked for the task.
        verdict = verdicts.get(exc.kind, Probe("yes", "yes"))
        if exc.kind is ProviderErrorKind.AUTH:
            verdict = Probe("yes", _refusal(exc))
    except Exception as exc:  # an adapter bug must not hide the other rows
        log.debug("probe crashed", exc_info=True)
        return Probe("unknown", "unknown", f"error: {type(exc).__name__}")
    else:
        verdict = Probe("yes", "yes")
    balance = getattr(provider, "balance", None)
    if verdict.key_accepted.startswith("yes") and callable(balance):
        with contextlib.suppress(ProviderError):
            verdict = Probe(verdict.reachable, verdict.key_accepted, str(await balance()))
    return verdict


async def _probe_demo() -> Probe:
    try:
        proc = await asyncio.create_subprocess_exec(
            ffmpeg_path(), "-version", stdout=asyncio.subprocess.DEVNULL
        )
        ok = await proc.wait() == 0
    except (OSError, RuntimeError, ImportError):
        ok = False
    return Probe("yes" if ok else "NO (no ffmpeg)", "n/a (no key)", "n/a")


async def _doctor_channels(
    settings: Settings, channels: list[ConfiguredChannel], out: TextIO
) -> bool:
    """The bot's permissions in each configured channel; False if one lacks any."""
    if not channels:
        print("channels   none configured (checked in each channel when a member asks)", file=out)
        return True
    token = settings.discord_token.reveal()
    if not token:
        print("channels   cannot check the bot's permissions: DISCORD_TOKEN not set", file=out)
        return True
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        verdicts = await check_channels(
            channels, session=session, base_url=settings.discord_api_base_url, token=token
        )
    for verdict in verdicts:
        print(f"channel    {verdict.line()}", file=out)
    return not any(verdict.missing for verdict in verdicts)


async def _doctor_discord(settings: Settings) -> tuple[bool, str]:
    """Would the bot log in? The token is asked for the bot's own user, which costs nothing.

    A missing token, a token Discord refuses and a Discord the bot cannot reach each
    stop the bot at start, so each makes ``doctor`` exit non-zero.
    """
    token = settings.discord_token.reveal()
    if not token:
        return False, "DISCORD_TOKEN NOT SET (the bot will not start)"
    url = f"{settings.discord_api_base_url}/users/@me"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
            session.get(url, headers={"Authorization": f"Bot {token}"}) as response,
        ):
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = "its host name does not resolve" if _unresolved(exc) else type(exc).__name__
        return False, (
            f"DISCORD_TOKEN set, but Discord cannot be reached at "
            f"{settings.discord_api_base_url} ({reason}): check the network or "
            "DISCORD_API_BASE_URL (the bot will not start)"
        )
    if status == 401:
        return False, (
            "DISCORD_TOKEN REFUSED by Discord (HTTP 401): reset it in the Developer Portal "
            "(the bot will not start)"
        )
    if status >= 400:
        return False, f"DISCORD_TOKEN set, but Discord answered HTTP {status}"
    return True, "DISCORD_TOKEN set and accepted by Discord"


def _unresolved(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "os_error", exc), socket.gaierror)


def _refusal(exc: ProviderError) -> str:
    """Why a key was refused, in the provider's own words where it gave some (no secret
    is in them: adapters keep keys out of ``detail``)."""
    said = exc.detail.strip() or (f"code {exc.provider_code}" if exc.provider_code else "")
    return f"NO (rejected: {said})" if said else "NO (rejected)"


async def doctor(settings: Settings, out: TextIO) -> int:
    """Check the configuration and every configured provider; 0 when all is well."""
    healthy = True
    names = settings.provider_names
    mode = " (demo mode: no provider key set)" if settings.demo_mode else ""
    print(f"settings   ok: providers in order: {', '.join(names)}{mode}", file=out)
    discord_ok, discord_line = await _doctor_discord(settings)
    healthy &= discord_ok
    print(f"discord    {discord_line}", file=out)
    target = settings.database_target
    existed = settings.database_url is not None or settings.database.exists()
    shown = redacted(str(target)) if settings.database_url is not None else str(target)
    try:
        db = await open_storage(target)
    except DatabaseOpenError as exc:  # reported, not raised: the rest is still worth checking
        healthy = False
        print(f"database   CANNOT OPEN: {exc}", file=out)
    else:
        version = await db.schema_version()
        channels = await configured_channels(db)
        await db.close()
        created = "" if existed else ", created just now"
        print(f"database   ok: {shown} (schema {version}{created})", file=out)
        healthy &= await _doctor_channels(settings, channels, out)
    callbacks = (
        f"providers call back to {settings.public_url}/callbacks/..."
        if settings.public_url
        else "HAILUO_PUBLIC_URL unset: providers are polled only"
    )
    print(f"callbacks  {callbacks}", file=out)
    rows = [("provider", "configured", "reachable", "key accepted", "balance")]
    async with aiohttp.ClientSession() as session:
        built = build_providers(
            settings.providers, session, timeout_seconds=settings.provider_timeout
        )
        for name in (*PROVIDER_NAMES, DEMO):
            if name not in names:
                if name != DEMO:
                    rows.append((name, "no", "-", "-", "-"))
                continue
            result = await (_probe_demo() if name == DEMO else probe(built[name]))
            healthy &= result.reachable == "yes" and not result.key_accepted.startswith("NO")
            rows.append((name, "yes", result.reachable, result.key_accepted, result.balance))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(file=out)
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip(), file=out)
    return 0 if healthy else 1


# -- generate -----------------------------------------------------------------------------
