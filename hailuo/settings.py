"""All configuration, read once from the environment and ``.env``, validated at start-up.

A variable set in the real environment wins over the same one in ``.env``.
A bad setting raises ``SettingsError`` with one sentence naming the variable;
``bot.py`` prints it and exits non-zero, never with a traceback. Secrets are
kept in ``Secret`` so that a stray ``repr`` or log line cannot show them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from hailuo.model.config import ProviderSettings, Secret

PROVIDER_NAMES = ("minimax", "freepik", "novita", "odkkk", "gptge")
#: Renders a short captioned MP4 locally: no key, no money, every video says DEMO.
DEMO = "demo"

DEFAULT_BASE_URLS = {
    "minimax": "https://api.minimax.io",
    "freepik": "https://api.freepik.com",
    "novita": "https://api.novita.ai",
    "odkkk": "https://ai.odkkk.com/apiv1",
    "gptge": "https://api.gpt.ge",
}

MIB = 1024 * 1024


class SettingsError(Exception):
    """A configuration mistake, said in one sentence that names the variable."""


@dataclass(frozen=True)
class Settings:
    discord_token: Secret
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    #: Connections kept to each Discord host for REST calls (``DISCORD_REST_CONNECTIONS``);
    #: 0: as many as requests at once (discord.py's default). See ``cogs.connections``.
    discord_rest_connections: int = 32
    #: The SQLite file; with a PostgreSQL URL, its folder still holds downloads and demo files.
    database: Path = Path("data/hailuo.sqlite3")
    #: ``HAILUO_DATABASE=postgresql://…``: the PostgreSQL engine (a secret: it holds a password).
    database_url: Secret | None = None
    providers: tuple[ProviderSettings, ...] = ()  # in failover order (HAILUO_PROVIDERS)
    freepik_webhook_secret: Secret | None = None
    poll_seconds: float = 5.0
    provider_timeout: float = 30.0  # seconds one provider call may take, connect included
    queue_timeout: float = 1800.0  # seconds a job may wait for a provider before its refund
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str | None = None
    #: Where ``/healthz``, ``/metrics`` (and the demo's files) are served once
    #: ``public_url`` exposes the HTTP port to providers: a loopback-only site of their own.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8081
    allow_private_urls: bool = False
    daily_credits: int = 10
    max_jobs_per_member: int = 2
    max_jobs_per_guild: int = 50
    approval: str = "off"
    default_upload_limit: int = 10 * MIB
    max_video_bytes: int = 200 * MIB
    #: Free space the data directory keeps: /healthz fails below it, a download needs it
    #: on top of the video's size.
    min_free_bytes: int = 512 * MIB
    #: How long a finished job's images are kept for a re-roll, seconds.
    image_retention: float = 72 * 3600.0
    #: How long a stop (SIGTERM) waits for the steps in flight; plus one provider
    #: call's timeout for a submit already sent, it stays under compose's 60 s grace.
    stop_grace: float = 20.0
    ffmpeg: str | None = None  # None: the binary imageio-ffmpeg ships
    shrink_timeout: float = 300.0  # seconds one re-encode to fit the upload limit may take
    log_level: str = "INFO"
    #: ``text`` (a line for a person) or ``json`` (one object per line, for log collectors).
    log_format: str = "text"
    sync_guild_id: int | None = None
    #: Discord shards in all (``HAILUO_SHARD_COUNT``); None: what Discord recommends.
    shard_count: int | None = None
    #: The shards this process runs (``HAILUO_SHARD_IDS``); None: every one of ``shard_count``.
    shard_ids: tuple[int, ...] | None = None

    @property
    def database_target(self) -> str | Path:
        """What ``storage.opening.open_storage`` opens: the PostgreSQL URL, else the file."""
        return self.database_url.reveal() if self.database_url is not None else self.database

    #: This process among those sharing one database (empty: ``hostname-pid``), and how
    #: long its lease on a job's step lasts unless renewed: a dead process's jobs are
    #: taken over by another after this long.
    process_id: str = ""
    lease_seconds: float = 60.0

    @property
    def provider_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers)

    @property
    def demo_mode(self) -> bool:
        return self.provider_names == (DEMO,)


def load_settings(
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = Path(".env"),
    *,
    require_discord: bool = True,
) -> Settings:
    """Merge ``.env`` under the real environment and validate every variable.

    ``require_discord=False`` is for the operator CLI, which never talks to
    Discord: a missing ``DISCORD_TOKEN`` then reads as an empty secret.
    """
    merged: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return _parse(_Reader(merged), require_discord=require_discord)


class _Reader:
    """Typed access to the merged variables; empty strings count as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def url(self, name: str, default: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.text(name, default)
        assert value is not None
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            allowed = " or ".join(f"{s}://" for s in schemes)
            raise SettingsError(f"{name} must be a URL starting with {allowed} and naming a host.")
        return value.rstrip("/") if schemes != ("ws", "wss") else value

    def integer(self, name: str, default: int | None, minimum: int = 0) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {value!r}.") from None
        if number < minimum:
            raise SettingsError(f"{name} must be at least {minimum}.")
        return number

    def number(self, name: str, default: float, minimum: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, not {value!r}.") from None
        if not number >= minimum:
            raise SettingsError(f"{name} must be at least {minimum:g}.")
        return number

    def rate(self, name: str) -> float | None:
        """A positive number of calls a second, or None when unset."""
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            message = f"{name} must be a number of calls a second, not {value!r}."
            raise SettingsError(message) from None
        if not 0 < number < float("inf"):
            raise SettingsError(f"{name} must be a number of calls a second above 0.")
        return number

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "0").lower()
        if value not in {"0", "1", "true", "false", "yes", "no"}:
            raise SettingsError(f"{name} must be 1 or 0.")
        return value in {"1", "true", "yes"}


def _parse(read: _Reader, *, require_discord: bool = True) -> Settings:
    token = read.text("DISCORD_TOKEN")
    if token is None and require_discord:
        # A copied ``.env.example`` has the line with nothing after ``=``: say so, since
        # "not set" sends a newcomer looking for a line that is there.
        if "DISCORD_TOKEN" in read.env:
            raise SettingsError(
                "DISCORD_TOKEN is empty: paste the bot's token after DISCORD_TOKEN= in .env "
                "(Developer Portal > your app > Bot > Reset Token)."
            )
        raise SettingsError(
            "DISCORD_TOKEN is not set: put the bot's token in the environment or in .env."
        )
    port = _port(read, "HAILUO_HTTP_PORT", 8080)
    http_host = read.text("HAILUO_HTTP_HOST", "127.0.0.1") or "127.0.0.1"
    metrics_port = _port(read, "HAILUO_METRICS_PORT", 8081)
    metrics_host = read.text("HAILUO_METRICS_HOST", "127.0.0.1") or "127.0.0.1"
    database_text = read.text("HAILUO_DATABASE", "data/hailuo.sqlite3") or ""
    database_url = None
    if database_text.startswith(("postgresql://", "postgres://")):
        database_url, database_text = Secret(database_text), "data/hailuo.sqlite3"
    database = Path(database_text)
    demo_dir = database.parent / "demo"  # beside the database, so on the same volume
    approval = (read.text("HAILUO_APPROVAL", "off") or "off").lower()
    if approval not in {"off", "new_members", "everyone"}:
        raise SettingsError("HAILUO_APPROVAL must be off, new_members or everyone.")
    public_url = read.text("HAILUO_PUBLIC_URL")
    # Once providers can reach the HTTP port, it serves callbacks only; the operator's
    # pages (and the demo's files, which the bot fetches itself) move to the loopback site.
    own_url = _own_url(metrics_host, metrics_port) if public_url else _own_url(http_host, port)
    shard_count = read.integer("HAILUO_SHARD_COUNT", None, minimum=1)
    return Settings(
        discord_token=Secret(token or ""),
        discord_api_base_url=read.url("DISCORD_API_BASE_URL", "https://discord.com/api/v10"),
        discord_gateway_url=read.url(
            "DISCORD_GATEWAY_URL", "wss://gateway.discord.gg/", schemes=("ws", "wss")
        ),
        discord_rest_connections=_req(read.integer("DISCORD_REST_CONNECTIONS", 32, minimum=0)),
        database=database,
        database_url=database_url,
        providers=_providers(read, own_url, demo_dir),
        freepik_webhook_secret=_secret(read.text("FREEPIK_WEBHOOK_SECRET")),
        poll_seconds=read.number("HAILUO_POLL_SECONDS", 5.0, minimum=0.01),
        provider_timeout=read.number("HAILUO_PROVIDER_TIMEOUT", 30.0, minimum=0.1),
        queue_timeout=read.number("HAILUO_QUEUE_TIMEOUT", 1800.0, minimum=60.0),
        http_host=http_host,
        http_port=port,
        public_url=read.url("HAILUO_PUBLIC_URL", "") if public_url else None,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        allow_private_urls=read.flag("HAILUO_ALLOW_PRIVATE_URLS"),
        daily_credits=_req(read.integer("HAILUO_DAILY_CREDITS", 10)),
        max_jobs_per_member=_req(read.integer("HAILUO_MAX_JOBS_PER_MEMBER", 2, minimum=1)),
        max_jobs_per_guild=_req(read.integer("HAILUO_MAX_JOBS_PER_GUILD", 50, minimum=1)),
        approval=approval,
        default_upload_limit=_req(
            read.integer("HAILUO_DEFAULT_UPLOAD_LIMIT", 10 * MIB, minimum=1024)
        ),
        max_video_bytes=_req(read.integer("HAILUO_MAX_VIDEO_BYTES", 200 * MIB, minimum=1024)),
        min_free_bytes=_req(read.integer("HAILUO_MIN_FREE_MB", 512, minimum=0)) * MIB,
        image_retention=_req(read.integer("HAILUO_IMAGE_RETENTION_HOURS", 72)) * 3600.0,
        stop_grace=read.number("HAILUO_STOP_GRACE_SECONDS", 20.0, minimum=0.0),
        ffmpeg=read.text("HAILUO_FFMPEG"),
        shrink_timeout=read.number("HAILUO_SHRINK_TIMEOUT", 300.0, minimum=1.0),
        log_level=(read.text("HAILUO_LOG_LEVEL", "INFO") or "INFO").upper(),
        log_format=_log_format(read),
        sync_guild_id=read.integer("HAILUO_SYNC_GUILD_ID", None, minimum=1),
        shard_count=shard_count,
        shard_ids=_shard_ids(read, shard_count),
        process_id=_process_id(read),
        lease_seconds=read.number("HAILUO_LEASE_SECONDS", 60.0, minimum=1.0),
    )


def _log_format(read: _Reader) -> str:
    value = (read.text("HAILUO_LOG_FORMAT", "text") or "text").lower()
    if value not in {"text", "json"}:
        raise SettingsError("HAILUO_LOG_FORMAT must be text or json.")
    return value


def _shard_ids(read: _Reader, shard_count: int | None) -> tuple[int, ...] | None:
    """``0-3`` or ``0,2`` or ``0-1,4``: which of the ``shard_count`` shards this process runs."""
    text = read.text("HAILUO_SHARD_IDS")
    if text is None:
        return None
    if shard_count is None:
        raise SettingsError(
            "HAILUO_SHARD_IDS needs HAILUO_SHARD_COUNT: set how many shards there are in all."
        )
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise SettingsError(
                f"HAILUO_SHARD_IDS must list shard numbers or ranges such as 0-3 or 0,2, "
                f"not {part!r}."
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise SettingsError(f"HAILUO_SHARD_IDS has the range {part!r} backwards.")
        ids.extend(range(first, last + 1))
    if max(ids) >= shard_count:
        raise SettingsError(
            f"HAILUO_SHARD_IDS names shard {max(ids)}, but with HAILUO_SHARD_COUNT={shard_count} "
            f"shards are numbered 0 to {shard_count - 1}."
        )
    if len(set(ids)) != len(ids):
        raise SettingsError("HAILUO_SHARD_IDS must name each shard at most once.")
    return tuple(sorted(ids))


def _process_id(read: _Reader) -> str:
    value = read.text("HAILUO_PROCESS_ID") or ""
    if value and not re.fullmatch(r"[A-Za-z0-9._:-]{1,100}", value):
        raise SettingsError(
            "HAILUO_PROCESS_ID must be letters, digits, '.', '_', ':' or '-' (at most 100)."
        )
    return value


def _port(read: _Reader, name: str, default: int) -> int:
    port = _req(read.integer(name, default, minimum=0))
    if port > 65535:
        raise SettingsError(f"{name} must be a port number from 0 to 65535.")
    return port


def _req(value: int | None) -> int:
    assert value is not None
    return value


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def _own_url(host: str, port: int) -> str:
    """How the bot reaches its own HTTP server (the demo's files): loopback for a wildcard."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - a comparison, not a bind
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _header_name(read: _Reader, name: str) -> str | None:
    value = read.text(name)
    if value is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise SettingsError(f"{name} must be an HTTP header name such as x-magnific-api-key.")
    return value.lower() if value else None


def _providers(read: _Reader, own_url: str, demo_dir: Path) -> tuple[ProviderSettings, ...]:
    demo = ProviderSettings(
        name=DEMO, api_key=None, base_url=own_url, submits_per_minute=None, directory=demo_dir
    )
    configured = {
        name: ProviderSettings(
            name=name,
            api_key=_secret(read.text(f"{name.upper()}_API_KEY")),
            base_url=read.url(f"{name.upper()}_BASE_URL", DEFAULT_BASE_URLS[name]),
            submits_per_minute=read.integer(f"{name.upper()}_SUBMITS_PER_MINUTE", None, 1),
            status_per_second=read.rate(f"{name.upper()}_STATUS_PER_SECOND"),
            key_header=_header_name(read, "FREEPIK_API_KEY_HEADER") if name == "freepik" else None,
        )
        for name in PROVIDER_NAMES
    }
    order_text = read.text("HAILUO_PROVIDERS")
    if order_text is None:
        order = [name for name in PROVIDER_NAMES if configured[name].api_key is not None]
        if not order:
            # No key at all: the bot can still be tried, with locally rendered demo videos.
            return (demo,)
    else:
        order = [part.strip().lower() for part in order_text.split(",") if part.strip()]
        if DEMO in order:
            if order != [DEMO]:
                raise SettingsError(
                    "HAILUO_PROVIDERS cannot mix demo with real providers: "
                    "members would spend credits on demo videos."
                )
            return (demo,)
        for name in order:
            if name not in configured:
                raise SettingsError(
                    f"HAILUO_PROVIDERS names {name!r}, which is not one of "
                    + ", ".join((*PROVIDER_NAMES, DEMO))
                    + "."
                )
            if configured[name].api_key is None:
                raise SettingsError(
                    f"HAILUO_PROVIDERS names {name} but {name.upper()}_API_KEY is not set."
                )
        if len(set(order)) != len(order) or not order:
            raise SettingsError("HAILUO_PROVIDERS must name each provider at most once.")
    return tuple(configured[name] for name in order)
