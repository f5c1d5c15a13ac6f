"""Entry point: read the settings, open storage, build the services, run the Discord client.

Every I/O object is built here, once, inside ``async with`` blocks, and
handed in; nothing is configured at import time, so a test builds the same
graph against simulators. A configuration mistake ends the program with one
sentence on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import random
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import discord
import yarl
from discord.ext import commands

from cogs.commands import HailuoCommands
from cogs.errors import HailuoTree
from cogs.notifier import DiscordNotifier
from hailuo.clock import Clock, system_clock
from hailuo.delivery import Downloader
from hailuo.jobs import JobDesk, prepared_input
from hailuo.metrics import Metrics
from hailuo.quotas import QuotaPolicy
from hailuo.settings import Settings, SettingsError, load_settings
from hailuo.web import HealthServer
from hailuo.worker import Worker, WorkerConfig
from providers.registry import build_providers
from storage.db import Database
from storage.jobs import JobRepository

log = logging.getLogger("hailuo")

COMMANDS_HASH_KEY = "commands_hash"


@dataclass
class Services:
    settings: Settings
    db: Database
    desk: JobDesk
    worker: Worker
    metrics: Metrics
    clock: Clock


class HailuoBot(commands.Bot):
    def __init__(
        self,
        build: Callable[[discord.Client], Services],
        *,
        force_sync: bool = False,
        **options: Any,
    ) -> None:
        options.setdefault("guild_ready_timeout", 2.0)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=HailuoTree,
            max_ratelimit_timeout=60.0,
            **options,
        )
        # The services need the client (their notifier posts through it), so the
        # bot builds them from a factory once it exists.
        self.services = build(self)
        self.settings = self.services.settings
        self.desk = self.services.desk
        self.worker = self.services.worker
        self.metrics = self.services.metrics
        self.clock = self.services.clock
        self.force_sync = force_sync
        self._stop = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        await self.add_cog(HailuoCommands(self))
        await self.sync_commands_if_changed()
        await self.worker.recover()
        self._worker_task = asyncio.create_task(self.worker.run(self._stop), name="hailuo-worker")

    async def sync_commands_if_changed(self) -> None:
        """Sync only when the definition changed (or with ``--sync``): Discord rate-limits syncs."""
        definition = json.dumps(
            [command.to_dict(self.tree) for command in self.tree.get_commands()],
            sort_keys=True,
        )
        digest = hashlib.sha256(definition.encode()).hexdigest()
        stored = await self.desk.jobs.get_state(COMMANDS_HASH_KEY)
        if stored == digest and not self.force_sync:
            log.info("commands unchanged; not syncing")
            return
        synced = await self.tree.sync()
        await self.desk.jobs.put_state(COMMANDS_HASH_KEY, digest)
        log.info("synced %d commands", len(synced))

    def gateway_connected(self) -> bool:
        return self.is_ready() and not self.is_closed()

    async def close(self) -> None:
        self._stop.set()
        self.worker.wake()
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._worker_task, timeout=10)
        await super().close()


def point_discord_at(settings: Settings) -> None:
    """Aim discord.py at the configured REST and gateway (an API proxy or the simulator)."""
    discord.http.Route.BASE = settings.discord_api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def build_services(
    client: discord.Client,
    *,
    settings: Settings,
    db: Database,
    session: aiohttp.ClientSession,
    clock: Clock,
) -> Services:
    """The whole object graph of the core, wired to ``client`` for what members see."""
    metrics = Metrics()
    policy = QuotaPolicy(
        daily_credits=settings.daily_credits,
        max_jobs_per_member=settings.max_jobs_per_member,
        max_jobs_per_guild=settings.max_jobs_per_guild,
    )

    async def policy_for(guild_id: int) -> QuotaPolicy:
        return policy

    jobs = JobRepository(db)
    worker = Worker(
        jobs,
        build_providers(settings.providers, session),
        list(settings.provider_names),
        notifier=DiscordNotifier(client),
        downloader=Downloader(
            session, max_bytes=settings.max_video_bytes, allow_private=settings.allow_private_urls
        ),
        clock=clock,
        rng=random.Random(),  # noqa: S311 - retry jitter, not security
        metrics=metrics,
        config=WorkerConfig(
            poll_seconds=settings.poll_seconds, default_upload_limit=settings.default_upload_limit
        ),
        prepare=partial(prepared_input, jobs),
    )
    desk = JobDesk(db, clock=clock, policy=policy_for, on_created=worker.wake)
    return Services(settings, db, desk, worker, metrics, clock)


@dataclass
class App:
    bot: HailuoBot
    health: HealthServer


@contextlib.asynccontextmanager
async def application(
    settings: Settings,
    *,
    force_sync: bool = False,
    clock: Clock = system_clock,
    **bot_options: Any,
) -> AsyncIterator[App]:
    """Open everything the bot needs and close it all again, in reverse order."""
    point_discord_at(settings)
    db = await Database.open(settings.database)
    try:
        async with aiohttp.ClientSession() as session:
            build = partial(build_services, settings=settings, db=db, session=session, clock=clock)
            bot = HailuoBot(build, force_sync=force_sync, **bot_options)
            health = HealthServer(
                host=settings.http_host,
                port=settings.http_port,
                gateway_connected=bot.gateway_connected,
                database_ok=db.ping,
                jobs_by_state=bot.desk.jobs.count_by_status,
                metrics=bot.metrics,
            )
            await health.start()
            try:
                async with bot:
                    yield App(bot, health)
            finally:
                await health.close()
    finally:
        await db.close()


async def run(settings: Settings, *, force_sync: bool = False) -> None:
    """Run the bot until it is closed (a signal or a fatal gateway error)."""
    async with application(settings, force_sync=force_sync) as app:
        await app.bot.start(settings.discord_token.reveal())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Hailuo Discord bot.")
    parser.add_argument("--sync", action="store_true", help="sync slash commands now")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"hailuo: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(run(settings, force_sync=args.sync))
    except discord.LoginFailure:
        print("hailuo: Discord refused DISCORD_TOKEN; check the bot's token.", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hailuo: could not start: {exc.strerror or exc}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
