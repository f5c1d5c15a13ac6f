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
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import discord
import yarl
from discord.ext import commands

from cogs.admin import AdminCommands
from cogs.approvals import APPROVAL_ITEMS, ApprovalEvents, build_queue_and_controls
from cogs.audit import AuditPageButton
from cogs.commands import HailuoCommands
from cogs.controls import CONTROL_ITEMS
from cogs.errors import HailuoTree
from cogs.links import FreshLinkButton
from cogs.notifier import DiscordNotifier
from cogs.outbox import Outbox
from cogs.translator import HailuoTranslator
from hailuo.clock import Clock, system_clock
from hailuo.jobs.cards import CardlessSweep, FirstAnswers
from hailuo.jobs.controls import JobControls
from hailuo.jobs.desk import JobDesk
from hailuo.jobs.submitting import prepared_input
from hailuo.jobs.worker import Worker, WorkerConfig
from hailuo.media.downloads import Downloader, sweep_temporary
from hailuo.media.housekeeping import ImageSweeper, disk_has_room
from hailuo.media.intake import ImageIntake
from hailuo.media.preparing import ImageWorkers
from hailuo.media.shrink import Shrinker
from hailuo.model.moderation import ApprovalMode, ModerationSettings
from hailuo.moderation.approval import ApprovalQueue
from hailuo.moderation.audit import AuditLog
from hailuo.money.quotas import GuildPolicies, QuotaPolicy
from hailuo.settings import Settings, SettingsError, load_settings
from hailuo.web.callbacks import CallbackRoutes, CallbackTokens, accepting, callback_urls
from hailuo.web.metrics import Metrics
from hailuo.web.server import HealthServer
from providers.demo import DemoProvider
from providers.registry import TABLE, build_providers
from storage.db import Database, DatabaseOpenError
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.moderation import ModerationSettingsRepository

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
    tokens: CallbackTokens | None = None
    #: Routes others add to the bot's HTTP server: the demo's files (operator side) ...
    mounts: list[Callable[[aiohttp.web.Application], None]] = field(default_factory=list)
    #: ... and the provider callbacks (the only routes on the public side).
    public_mounts: list[Callable[[aiohttp.web.Application], None]] = field(default_factory=list)
    #: Each server's quota policy (the environment's defaults under what its admins set).
    policies: GuildPolicies | None = None
    #: The audit log: appends rows and mirrors every committed one to the log channel.
    audit: AuditLog | None = None
    #: The approval queue and the member's controls (cogs/approvals.py, cogs/controls.py).
    approvals: ApprovalQueue | None = None
    controls: JobControls | None = None
    #: Jobs whose first answer is on its way (a job with no card waits for it).
    first_answers: FirstAnswers = field(default_factory=FirstAnswers)
    #: Fetches and checks ``/hailuo animate`` images (cogs/generate.py).
    intake: ImageIntake | None = None
    #: The per-channel queues of everything the bot posts and edits (cogs/outbox.py).
    outbox: Outbox | None = None


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
        assert self.services.policies is not None
        await self.add_cog(AdminCommands(self, self.services.policies))
        self.add_dynamic_items(AuditPageButton)
        await self.add_cog(ApprovalEvents(self))
        self.add_dynamic_items(*APPROVAL_ITEMS, *CONTROL_ITEMS, FreshLinkButton)
        # Before the hash: the translations are part of what a sync sends.
        await self.tree.set_translator(HailuoTranslator())
        await self.sync_commands_if_changed()
        await self.worker.recover()
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
        stored = await self.desk.jobs.get_state(COMMANDS_HASH_KEY)
        if stored == digest and not self.force_sync:
            log.info("commands unchanged; not syncing")
            return
        guild = discord.Object(self.settings.sync_guild_id) if self.settings.sync_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        await self.desk.jobs.put_state(COMMANDS_HASH_KEY, digest)
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
            if self.services.outbox is not None:  # waiting posts are told, not left hanging
                await self.services.outbox.close()
            await super().close()
            if self.services.intake is not None:
                self.services.intake.workers.close()

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
        drains: list[Coroutine[Any, Any, Any]] = [self.desk.notices_sent()]
        if self.services.audit is not None:
            drains.append(self.services.audit.drained())
        if self.services.approvals is not None:
            drains.append(self.services.approvals.settled())
        if self.services.outbox is not None:  # the last card edits still queued
            drains.append(self.services.outbox.drained())
        return drains


def _left(deadline: float, loop: asyncio.AbstractEventLoop) -> float:
    """Seconds left of the stop grace (a little always, so a last drain can answer)."""
    return max(0.1, deadline - loop.time())


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
    # The environment's limits are the defaults; each server's admins may override them.
    defaults = QuotaPolicy(
        daily_credits=settings.daily_credits,
        max_jobs_per_member=settings.max_jobs_per_member,
        max_jobs_per_guild=settings.max_jobs_per_guild,
    )
    policies = GuildPolicies(GuildRepository(db), defaults, clock)
    outbox = Outbox()
    jobs = JobRepository(db)
    first_answers = FirstAnswers()
    notifier = DiscordNotifier(client, outbox, cards=jobs, answers=first_answers, clock=clock)
    providers = build_providers(
        settings.providers, session, timeout_seconds=settings.provider_timeout
    )
    tokens = CallbackTokens(jobs)
    answering = accepting(providers, settings.freepik_webhook_secret)
    # The demo's result URL is our own loopback server, so only its downloads may be private.
    demos = [p for p in providers.values() if isinstance(p, DemoProvider)]
    downloader = partial(
        Downloader,
        max_bytes=settings.max_video_bytes,
        directory=temp_directory(settings),
        min_free=settings.min_free_bytes,
    )
    own = downloader(allow_private=True)
    worker = Worker(
        jobs,
        providers,
        list(settings.provider_names),
        capabilities=TABLE,
        notifier=notifier,
        downloader=downloader(allow_private=settings.allow_private_urls),
        clock=clock,
        rng=random.Random(),  # noqa: S311 - retry jitter, not security
        metrics=metrics,
        config=WorkerConfig(
            poll_seconds=settings.poll_seconds,
            default_upload_limit=settings.default_upload_limit,
            queue_deadline=settings.queue_timeout,
        ),
        prepare=partial(prepared_input, jobs),
        submit_caps={p.name: p.submits_per_minute for p in settings.providers},
        callback_url=(
            callback_urls(tokens, settings.public_url, answering) if settings.public_url else None
        ),
        downloaders={demo.name: own for demo in demos},
        shrinker=Shrinker(settings.ffmpeg, timeout=settings.shrink_timeout),
    )
    callbacks = CallbackRoutes(
        tokens,
        poll=worker.poll_soon,
        providers=answering,
        clock=clock,
        freepik_secret=settings.freepik_webhook_secret,
    )
    # HAILUO_APPROVAL is the approval mode of every server that has not chosen its own.
    moderation = ModerationSettingsRepository(
        db, defaults=ModerationSettings(0, approval_mode=ApprovalMode(settings.approval))
    )
    desk = JobDesk(
        db,
        clock=clock,
        policy=policies,
        on_created=worker.wake,
        notices=notifier,
        moderation=moderation,
    )
    worker.sweeps.append(ImageSweeper(jobs, clock, retention=settings.image_retention).sweep)
    mounts: list[Callable[[aiohttp.web.Application], None]] = [demo.mount for demo in demos]
    audit = AuditLog(db, notifier, clock=clock)
    approvals, controls = build_queue_and_controls(
        client, db, desk=desk, worker=worker, audit=audit, status=notifier, clock=clock
    )
    # Jobs that ended with no card just before a restart tell their members once.
    worker.sweeps.append(CardlessSweep(jobs, notifier, clock))
    return Services(
        settings,
        db,
        desk,
        worker,
        metrics,
        clock,
        tokens,
        mounts,
        public_mounts=[callbacks.mount],
        policies=policies,
        audit=audit,
        approvals=approvals,
        controls=controls,
        first_answers=first_answers,
        intake=ImageIntake(
            session, in_flight=desk.guilds.in_flight, policy=policies, workers=ImageWorkers()
        ),
        outbox=outbox,
    )


def temp_directory(settings: Settings) -> Path:
    """Where downloads are written: beside the database, on its volume, never /tmp."""
    return settings.database.parent / "tmp"


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
            if bot.services.tokens is not None:
                await bot.services.tokens.load()
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
                jobs_by_state=bot.desk.jobs.count_by_status,
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
    except DatabaseOpenError as exc:
        print(f"hailuo: {exc}; check HAILUO_DATABASE.", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hailuo: could not start: {exc.strerror or exc}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
