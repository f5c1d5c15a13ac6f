"""Entry point: read the settings, open storage, build the services, run the Discord client.

Every I/O object is opened here, once, inside ``async with`` blocks, and
handed to ``hailuo.assembly.build_core`` with the Discord side's ports
(``discord_ports``); nothing is configured at import time, so a test builds the
same graph against simulators. A configuration mistake ends the program with one
sentence on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import aiohttp.web
import discord
import yarl
from discord.ext import commands

from cogs.admin import AdminCommands
from cogs.approvals import APPROVAL_ITEMS, ApprovalEvents, DiscordApprovalNotifier
from cogs.audit import AuditPageButton
from cogs.commands import HailuoCommands
from cogs.controls import CONTROL_ITEMS, DiscordVideoRemover
from cogs.errors import HailuoTree
from cogs.extend import EXTEND_ITEMS
from cogs.links import FreshLinkButton
from cogs.notifier import DiscordNotifier
from cogs.outbox import Outbox
from cogs.translator import HailuoTranslator
from hailuo.assembly import Core, PortNeeds, Ports, build_core, temp_directory
from hailuo.clock import Clock, system_clock
from hailuo.media.downloads import sweep_temporary
from hailuo.media.housekeeping import disk_has_room
from hailuo.settings import Settings, SettingsError, load_settings
from hailuo.startup import silence_voice_warnings, start_failure
from hailuo.web.server import HealthServer
from providers.demo import DemoProvider
from storage.db import Database, DatabaseOpenError

log = logging.getLogger("hailuo")

COMMANDS_HASH_KEY = "commands_hash"


#: The bot's core as its cogs reach it (``bot.services``): built by ``hailuo.assembly``.
Services = Core


class HailuoBot(commands.Bot):
    def __init__(
        self,
        build: Callable[[discord.Client], Core],
        *,
        force_sync: bool = False,
        sync_only: bool = False,
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
        #: The per-channel queues of everything the bot posts and edits (cogs/outbox.py).
        self.outbox = Outbox()
        self.services = build(self)
        self.settings = self.services.settings
        self.desk = self.services.desk
        self.worker = self.services.worker
        self.metrics = self.services.metrics
        self.clock = self.services.clock
        self.force_sync = force_sync
        self.sync_only = sync_only  # ``--sync-only``: the commands, then nothing else
        self._stop = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        await self.add_cog(HailuoCommands(self))
        await self.add_cog(AdminCommands(self, self.services.policies))
        self.add_dynamic_items(AuditPageButton)
        await self.add_cog(ApprovalEvents(self))
        self.add_dynamic_items(*APPROVAL_ITEMS, *CONTROL_ITEMS, *EXTEND_ITEMS, FreshLinkButton)
        # Before the hash: the translations are part of what a sync sends.
        await self.tree.set_translator(HailuoTranslator())
        await self.sync_commands_if_changed()
        if self.sync_only:
            return
        await self.worker.recover()
        # What start-up built (modules, discord.py, the core) lives as long as the process:
        # frozen out of the collector's full passes, which otherwise walk it all and stall
        # the event loop for 50-100 ms each with 10,000 open jobs (bench/scale.py).
        gc.freeze()
        self._worker_task = asyncio.create_task(self.worker.run(self._stop), name="hailuo-worker")

    async def sync_commands_if_changed(self) -> None:
        """Sync only when the definition changed (or with ``--sync``): Discord rate-limits syncs."""
        # ``to_dict`` leaves out the *_localizations; the translated payload is what
        # ``tree.sync`` sends when a translator is set, so a changed translation re-syncs.
        translator = self.tree.translator
        definition = json.dumps(
            [
                await command.get_translated_payload(self.tree, translator)
                if translator is not None
                else command.to_dict(self.tree)
                for command in self.tree.get_commands()
            ],
            sort_keys=True,
        )
        digest = hashlib.sha256(definition.encode()).hexdigest()
        stored = await self.desk.remembered(COMMANDS_HASH_KEY)
        if stored == digest and not self.force_sync:
            log.info("commands unchanged; not syncing")
            return
        guild = discord.Object(self.settings.sync_guild_id) if self.settings.sync_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        await self.desk.remember(COMMANDS_HASH_KEY, digest)
        log.info("synced %d commands", len(synced))

    def gateway_connected(self) -> bool:
        return self.is_ready() and not self.is_closed()

    def worker_running(self) -> bool:
        """Whether the worker loop is alive (a dead one must not pass the health check)."""
        return self._worker_task is not None and not self._worker_task.done()

    async def close(self) -> None:
        """Stop cleanly (SIGTERM): no new step, the ones in flight finish, then disconnect.

        Everything waits within ``HAILUO_STOP_GRACE_SECONDS``; steps still running
        then are cancelled, except a submit already sent: it is shielded and runs on
        to its recorded outcome (at most ``HAILUO_PROVIDER_TIMEOUT`` more). Whatever
        happens the client is closed, so the process exits 0 inside the
        orchestrator's grace (compose.yaml ``stop_grace_period``: 60 s > 20 + 30 s).
        """
        if not self._stop.is_set():
            log.info(
                "stopping: no new steps; up to %.0f s for the ones in flight",
                self.settings.stop_grace,
            )
        self._stop.set()
        self.worker.wake()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.stop_grace
        try:
            await self._stop_worker(deadline)
            for drain in self._drains():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(drain, timeout=min(5.0, _left(deadline, loop)))
        finally:
            await self.outbox.close()  # waiting posts are told, not left hanging
            await super().close()
            self.services.close()

    async def _stop_worker(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        task = self._worker_task
        within = _left(deadline, loop)
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=within)
            if not task.done():
                log.warning("steps still running at the end of the stop grace; cancelling them")
                task.cancel()
                await asyncio.wait({task})
            # A cancelled submit's call goes on (shielded) until it answered and was
            # recorded: at most one provider call's timeout more.
            within = max(_left(deadline, loop), self.settings.provider_timeout)
        if not await self.worker.finish_submits(within):
            log.warning("a submit is still unanswered; the next start ends it as interrupted")

    def _drains(self) -> list[Coroutine[Any, Any, Any]]:
        """What is still on its way: admins' notices, audit rows, approval decisions."""
        return [
            self.desk.notices_sent(),
            self.services.audit.drained(),
            self.services.approvals.settled(),
            self.outbox.drained(),  # the last card edits still queued
        ]


def _left(deadline: float, loop: asyncio.AbstractEventLoop) -> float:
    """Seconds left of the stop grace (a little always, so a last drain can answer)."""
    return max(0.1, deadline - loop.time())


def point_discord_at(settings: Settings) -> None:
    """Aim discord.py at the configured REST and gateway (an API proxy or the simulator)."""
    discord.http.Route.BASE = settings.discord_api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def discord_ports(client: discord.Client, outbox: Outbox) -> Callable[[PortNeeds], Ports]:
    """The core's ports on the Discord side: every post goes through ``client``, and
    everything it creates or edits in a channel through that channel's ``outbox``."""

    def ports(needs: PortNeeds) -> Ports:
        return Ports(
            notifier=DiscordNotifier(
                client, outbox, cards=needs.cards, answers=needs.answers, clock=needs.clock
            ),
            approvals=DiscordApprovalNotifier(client),
            remover=DiscordVideoRemover(client),
        )

    return ports


def build_services(
    client: discord.Client,
    *,
    settings: Settings,
    db: Database,
    session: aiohttp.ClientSession,
    clock: Clock,
) -> Core:
    """The whole object graph of the core (``hailuo.assembly``), wired to ``client``."""
    outbox = client.outbox if isinstance(client, HailuoBot) else Outbox()
    return build_core(settings, db, session, clock, discord_ports(client, outbox))


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
    # Downloads a crash left behind: nothing else uses the directory before the worker.
    await asyncio.to_thread(sweep_temporary, temp_directory(settings))
    try:
        async with aiohttp.ClientSession() as session:
            build = partial(build_services, settings=settings, db=db, session=session, clock=clock)
            bot = HailuoBot(build, force_sync=force_sync, **bot_options)
            await bot.services.start()
            if settings.demo_mode:
                log.warning(
                    "Demo mode: no provider key is set, so videos are rendered locally "
                    "and marked DEMO; set a *_API_KEY to make real ones."
                )
            health = HealthServer(
                host=settings.http_host,
                port=settings.http_port,
                gateway_connected=bot.gateway_connected,
                database_ok=lambda: db.heartbeat(str(clock())),
                jobs_by_state=bot.desk.count_by_status,
                metrics=bot.metrics,
                mounts=bot.services.mounts,
                public_mounts=bot.services.public_mounts,
                operator=(
                    (settings.metrics_host, settings.metrics_port) if settings.public_url else None
                ),
                disk_ok=partial(disk_has_room, settings.database.parent, settings.min_free_bytes),
                worker_alive=bot.worker_running,
            )
            await health.start()
            operator_port = settings.metrics_port if settings.public_url else settings.http_port
            if operator_port == 0:
                for provider in bot.worker.providers.values():
                    if isinstance(provider, DemoProvider):
                        provider.serve_from(f"http://127.0.0.1:{health.operator_port}")
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
        loop = asyncio.get_running_loop()
        closing: list[asyncio.Task[None]] = []

        def stop() -> None:
            # A container stop is SIGTERM: close cleanly so the worker's last writes land.
            # Once: a second signal does not start a second stop.
            if not closing:
                closing.append(asyncio.create_task(app.bot.close(), name="hailuo-stop"))

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        await app.bot.start(settings.discord_token.reveal())
        if closing:
            await closing[0]


async def sync_only(settings: Settings) -> None:
    """Sync the slash commands over REST and stop: no gateway, no worker, no HTTP port,
    so it can run beside the running bot (``docker compose exec``)."""
    point_discord_at(settings)
    db = await Database.open(settings.database)
    try:
        async with aiohttp.ClientSession() as session:
            build = partial(
                build_services, settings=settings, db=db, session=session, clock=system_clock
            )
            bot = HailuoBot(build, force_sync=True, sync_only=True)
            try:
                await bot.login(settings.discord_token.reveal())  # runs setup_hook: the sync
            finally:
                await bot.close()
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Hailuo Discord bot.")
    parser.add_argument("--sync", action="store_true", help="sync slash commands now")
    parser.add_argument(
        "--sync-only",
        action="store_true",
        help="sync slash commands and exit (safe beside a running bot)",
    )
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
    silence_voice_warnings()
    try:
        if args.sync_only:
            asyncio.run(sync_only(settings))
            print("hailuo: slash commands synced.", file=sys.stderr)
        else:
            asyncio.run(run(settings, force_sync=args.sync))
    except discord.LoginFailure:
        print("hailuo: Discord refused DISCORD_TOKEN; check the bot's token.", file=sys.stderr)
        return 2
    except DatabaseOpenError as exc:
        print(f"hailuo: {exc}; check HAILUO_DATABASE.", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hailuo: could not start: {start_failure(exc, settings)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
