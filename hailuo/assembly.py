"""The one place that builds the bot's core: ``build_core``.

``bot.py``, ``python -m hailuo generate`` and the tests all call it, so what a
test exercises is the graph that runs in production. Its inputs are what the
core cannot make itself: the settings, the open database, the HTTP session,
the clock and the front end's ports (``Ports``: the notifier, the moderators'
approval messages, the video remover), given as protocol objects so this
module never imports discord. Its output is a frozen ``Core`` with no
optional fields: nothing is filled in later, nothing is checked with asserts.

``Parts`` holds the few parts a caller may choose instead of the settings'
(the CLI's own demo server and throw-away quota, a test's simulators and
fixed random seed); each defaults to what the bot builds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path

import aiohttp
import aiohttp.web

from hailuo.clock import Clock
from hailuo.jobs.cards import CardBook, CardlessSweep, FirstAnswers
from hailuo.jobs.controls import JobControls, VideoRemover
from hailuo.jobs.desk import JobDesk
from hailuo.jobs.extending import Extender
from hailuo.jobs.links import FreshLinks
from hailuo.jobs.notify import Notifier
from hailuo.jobs.resilience import Resilience
from hailuo.jobs.submitting import prepared_input
from hailuo.jobs.worker import Worker, WorkerConfig, WorkerDeps
from hailuo.media.downloads import Downloader
from hailuo.media.housekeeping import ImageSweeper
from hailuo.media.intake import ImageIntake
from hailuo.media.preparing import ImageWorkers
from hailuo.media.shrink import Shrinker
from hailuo.model.moderation import ApprovalMode, ModerationSettings
from hailuo.model.provider import Provider
from hailuo.model.spec import JobSpec
from hailuo.moderation.admin import ModerationAdmin
from hailuo.moderation.approval import ApprovalNotifier, ApprovalQueue
from hailuo.moderation.audit import AuditLog
from hailuo.money.prices import default_prices
from hailuo.money.quotas import GuildPolicies, QuotaPolicy
from hailuo.settings import Settings
from hailuo.web.callbacks import CallbackRoutes, CallbackTokens, accepting, callback_urls
from hailuo.web.images import ImageLinks
from hailuo.web.metrics import Metrics
from providers.demo import DemoProvider
from providers.registry import TABLE, build_providers
from storage.moderation import ModerationSettingsRepository
from storage.opening import AnyDatabase

Mount = Callable[[aiohttp.web.Application], None]


@dataclass(frozen=True)
class PortNeeds:
    """What the front end's ports may need from the core (the notifier remembers cards)."""

    cards: CardBook
    answers: FirstAnswers
    clock: Clock


@dataclass(frozen=True)
class Ports:
    """The front end as the core sees it: three protocols, no Discord type."""

    notifier: Notifier
    approvals: ApprovalNotifier
    remover: VideoRemover


@dataclass(frozen=True)
class Parts:
    """Parts chosen instead of the settings' (the CLI, tests); ``None``: the bot's own."""

    providers: Mapping[str, Provider] | None = None  # with their failover order
    quota: QuotaPolicy | None = None  # every server's defaults (else the settings')
    config: WorkerConfig | None = None
    rng: random.Random | None = None
    downloader: Downloader | None = None  # every download's, the demo's included
    shrinker: Shrinker | None = None
    resilience: Resilience | None = None
    serves: Callable[[str, JobSpec], bool] | None = None


@dataclass(frozen=True)
class Core:
    """The whole core, built once; every field is set."""

    settings: Settings
    db: AnyDatabase
    clock: Clock
    metrics: Metrics
    notifier: Notifier
    desk: JobDesk
    worker: Worker
    policies: GuildPolicies
    audit: AuditLog
    approvals: ApprovalQueue
    controls: JobControls
    moderation: ModerationAdmin
    links: FreshLinks
    first_answers: FirstAnswers
    intake: ImageIntake
    tokens: CallbackTokens
    #: Routes on the bot's HTTP server: the demo's files (operator side) ...
    mounts: tuple[Mount, ...]
    #: ... and the provider callbacks (the only routes on the public side).
    public_mounts: tuple[Mount, ...]

    async def start(self) -> None:
        """What needs the loop before the first request: the callback tokens' secret."""
        await self.tokens.load()

    @cached_property
    def extender(self) -> Extender:
        """Extend a delivered video from its last frame, with the worker's own downloader."""
        return Extender(self.db.jobs, self.links, self.worker.deliverer.downloader, self.intake)

    def close(self) -> None:
        """Release the image threads (after the front end stopped)."""
        self.intake.workers.close()


def temp_directory(settings: Settings) -> Path:
    """Where downloads are written: beside the database, on its volume, never /tmp."""
    return settings.database.parent / "tmp"


def build_core(
    settings: Settings,
    db: AnyDatabase,
    session: aiohttp.ClientSession,
    clock: Clock,
    ports: Ports | Callable[[PortNeeds], Ports],
    parts: Parts = Parts(),
) -> Core:
    """The whole object graph of the core, wired to ``ports`` for what members see."""
    metrics = Metrics()
    jobs = db.jobs
    first_answers = FirstAnswers()
    if not isinstance(ports, Ports):
        ports = ports(PortNeeds(cards=jobs, answers=first_answers, clock=clock))
    notifier = ports.notifier
    if parts.providers is not None:
        providers = dict(parts.providers)
    else:
        providers = build_providers(
            settings.providers, session, timeout_seconds=settings.provider_timeout
        )
    # The environment's limits are the defaults; each server's admins may override them.
    defaults = parts.quota or QuotaPolicy(
        daily_credits=settings.daily_credits,
        max_jobs_per_member=settings.max_jobs_per_member,
        max_jobs_per_guild=settings.max_jobs_per_guild,
    )
    if not defaults.priced_providers:  # the configured providers' declared prices
        defaults = replace(
            defaults,
            prices={**default_prices(TABLE, providers), **defaults.prices},
            priced_providers=tuple(providers),
        )
    policies = GuildPolicies(db, defaults, clock)
    tokens = CallbackTokens(jobs)
    # Providers that want image URLs get the bot's own signed ones when it is public.
    images = (
        ImageLinks(tokens, jobs, clock, settings.public_url, TABLE) if settings.public_url else None
    )
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
        WorkerDeps(
            storage=db,
            providers=providers,
            order=tuple(providers),
            notifier=notifier,
            capabilities=TABLE,
            downloader=parts.downloader or downloader(allow_private=settings.allow_private_urls),
            clock=clock,
            rng=parts.rng or random.Random(),  # noqa: S311 - retry jitter, not security
            metrics=metrics,
            config=parts.config
            or WorkerConfig(
                poll_seconds=settings.poll_seconds,
                default_upload_limit=settings.default_upload_limit,
                queue_deadline=settings.queue_timeout,
                process_id=settings.process_id,
                lease_seconds=settings.lease_seconds,
            ),
            prepare=partial(prepared_input, jobs),
            submit_caps={p.name: p.submits_per_minute for p in settings.providers},
            status_budgets={p.name: p.status_per_second for p in settings.providers},
            serves=parts.serves,
            callback_url=(
                callback_urls(tokens, settings.public_url, answering)
                if settings.public_url
                else None
            ),
            downloaders={} if parts.downloader else {demo.name: own for demo in demos},
            shrinker=parts.shrinker or Shrinker(settings.ffmpeg, timeout=settings.shrink_timeout),
            resilience=parts.resilience,
            image_url=images.url if images is not None else None,
        )
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
    audit = AuditLog(db, notifier, clock=clock)
    approvals = ApprovalQueue(
        db,
        clock=clock,
        status=notifier,
        notifier=ports.approvals,
        on_queued=worker.wake,
        settings=desk.gate.settings,
        policy=desk.policy,
    )
    worker.sweeps.append(approvals.sweep)
    controls = JobControls(
        db, desk=desk, approvals=approvals, audit=audit, remover=ports.remover, clock=clock
    )
    # Jobs that ended with no card just before a restart tell their members once.
    worker.sweeps.append(CardlessSweep(jobs, notifier, clock))
    return Core(
        settings=settings,
        db=db,
        clock=clock,
        metrics=metrics,
        notifier=notifier,
        desk=desk,
        worker=worker,
        policies=policies,
        audit=audit,
        approvals=approvals,
        controls=controls,
        moderation=ModerationAdmin(
            db, settings=desk.gate.settings, audit=audit, clock=clock, on_change=desk.gate.forget
        ),
        links=FreshLinks(jobs, providers),
        first_answers=first_answers,
        intake=ImageIntake(
            session,
            in_flight=desk.guilds.in_flight,
            policy=policies,
            workers=ImageWorkers(),
            capabilities=TABLE,
        ),
        tokens=tokens,
        mounts=tuple(demo.mount for demo in demos),
        public_mounts=(callbacks.mount,) + ((images.mount,) if images is not None else ()),
    )
