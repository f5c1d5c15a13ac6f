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
from discord.ext import commands

from cogs.admin import AdminCommands
from cogs.approvals import ApprovalEvents, DiscordApprovalNotifier
from cogs.buttons import BUTTONS, StalePresses
from cogs.commands import HailuoCommands
from cogs.connections import DiscordConnector, discord_connector, point_discord_at
from cogs.controls import DiscordVideoRemover
from cogs.errors import HailuoTree
from cogs.notifier import DiscordNotifier
from cogs.outbox import Outbox
from cogs.sync import sync_if_changed
from cogs.translator import HailuoTranslator
from hailuo.assembly import Core, PortNeeds, Ports, build_core, temp_directory
from hailuo.clock import Clock, system_clock
from hailuo.logs import configure_logging
from hailuo.media.downloads import sweep_temporary
from hailuo.media.housekeeping import disk_has_room
from hailuo.settings import Settings, SettingsError, load_settings
from hailuo.startup import shard_refusal, silence_voice_warnings, start_failure
from hailuo.web.server import HealthServer
from providers.demo import DemoProvider
from storage.opening import AnyDatabase, DatabaseOpenError, open_storage

log = logging.getLogger("hailuo")


#: The bot's core as its cogs reach it (``bot.services``): built by ``hailuo.assembly``.
Services = Core


class HailuoBot(commands.AutoShardedBot):
    """The Discord client: discord.py's own sharding, on the shards the settings name.

    ``shard_count``/``shard_ids`` come from ``HAILUO_SHARD_COUNT``/``HAILUO_SHARD_IDS``;
    unset, one process runs every shard Discord recommends (``GET /gateway/bot``).
    Gateway events arrive at the process holding their guild's shard; everything the
    worker posts or edits goes over REST, which any process may use.
    """

    def __init__(
        self,
        build: Callable[[discord.Client], Core],
        *,
        force_sync: bool = False,
        sync_only: bool = False,
        shard_count: int | None = None,
        shard_ids: tuple[int, ...] | None = None,
        identify_spacing: float = 5.0,
        **options: Any,
    ) -> None:
        options.setdefault("guild_ready_timeout", 2.0)
        if shard_ids is not None:  # discord.py takes the key's absence for "every shard"
            options["shard_ids"] = list(shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=HailuoTree,
            max_ratelimit_timeout=60.0,
            shard_count=shard_count,
            **options,
        )
        #: Seconds between two shards' IDENTIFYs (Discord allows one per 5 s per bucket).
        self.identify_spacing = identify_spacing
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
        await self.add_cog(ApprovalEvents(self))
        self.add_dynamic_items(*BUTTONS)
        await self.add_cog(StalePresses(BUTTONS))
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
        await sync_if_changed(
            self.tree,
            self.desk,
            self.clock,
            guild_id=self.settings.sync_guild_id,
            force=self.force_sync,
        )

    async def launch_shards(self) -> None:
        """Ask Discord how many shards it recommends when the settings do not say, then
        connect to ``DISCORD_GATEWAY_URL`` (discord.py would take ``/gateway/bot``'s URL)."""
        if self.shard_count is None and not self.is_closed():
            self.shard_count, _, _ = await self.http.get_bot_gateway()
            log.info("Discord recommends %d shard(s); running them all", self.shard_count)
        connector = self.http.connector
        if isinstance(connector, DiscordConnector) and self.shard_count is not None:
            connector.hold_for_gateway(len(self.shard_ids or range(self.shard_count)))
        await super().launch_shards()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_spacing)

    def gateway_connected(self) -> bool:
        """Ready, open, and every shard of this process connected."""
        if not self.is_ready() or self.is_closed():
            return False
        return all(not shard.is_closed() for shard in self.shards.values())

    def shard_states(self) -> dict[int, bool]:
        """Each shard of this process: connected or not (``/healthz``, ``/metrics``)."""
        return {shard_id: not shard.is_closed() for shard_id, shard in self.shards.items()}

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
            # A cancelled submit's call goes on (shielded), its step waiting for it with the
            # job's lease held, until it answered and was recorded: at most one provider
            # call's timeout more.
            within = max(_left(deadline, loop), self.settings.provider_timeout)
            if not task.done():
                log.warning("steps still running at the end of the stop grace; cancelling them")
                task.cancel()
                cancelled_at = loop.time()
                await asyncio.wait({task}, timeout=within)
                within = max(0.0, within - (loop.time() - cancelled_at))
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


def discord_ports(client: discord.Client, outbox: Outbox) -> Callable[[PortNeeds], Ports]:
    """The core's ports on the Discord side: every post goes through ``client``, and
    everything it creates or edits in a channel through that channel's ``outbox``."""

    def ports(needs: PortNeeds) -> Ports:
        return Ports(
            notifier=DiscordNotifier(
                client, outbox, cards=needs.cards, answers=needs.answers, clock=needs.clock
            ),
            approvals=DiscordApprovalNotifier(client, outbox),
            remover=DiscordVideoRemover(client),
        )

    return ports


def build_services(
    client: discord.Client,
    *,
    settings: Settings,
    db: AnyDatabase,
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
    db = await open_storage(settings.database_target)
    # Downloads a crash left behind: nothing else uses the directory before the worker.
    await asyncio.to_thread(sweep_temporary, temp_directory(settings))
    try:
        async with aiohttp.ClientSession() as session:
            build = partial(build_services, settings=settings, db=db, session=session, clock=clock)
            bot_options.setdefault("shard_count", settings.shard_count)
            bot_options.setdefault("shard_ids", settings.shard_ids)
            bot_options.setdefault("connector", discord_connector(settings))
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
                shards=bot.shard_states,
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
    db = await open_storage(settings.database_target)
    try:
        async with aiohttp.ClientSession() as session:
            build = partial(
                build_services, settings=settings, db=db, session=session, clock=system_clock
            )
            bot = HailuoBot(
                build, force_sync=True, sync_only=True, connector=discord_connector(settings)
            )
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
    configure_logging(settings)  # HAILUO_LOG_FORMAT: text, or one JSON object a line
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
    except discord.ConnectionClosed as exc:
        if (refusal := shard_refusal(exc.code)) is None:
            raise
        print(f"hailuo: {refusal}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hailuo: could not start: {start_failure(exc, settings)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
