"""Build the bot's core (``hailuo.assembly.build_core``, as bot.py does) against simulators."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from hailuo.assembly import Core as AssembledCore
from hailuo.assembly import Parts, Ports
from hailuo.assembly import build_core as assemble
from hailuo.jobs.controls import VideoRemover
from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.jobs.resilience import Resilience
from hailuo.jobs.worker import Worker, WorkerConfig
from hailuo.media.downloads import Downloader
from hailuo.media.shrink import Shrinker
from hailuo.model.config import Secret
from hailuo.model.job import Job, StoredImage
from hailuo.model.provider import Provider
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ApprovalNotifier
from hailuo.money.quotas import QuotaPolicy
from hailuo.settings import Settings
from hailuo.web.metrics import Metrics
from storage.approvals import ApprovalRequest
from storage.db import Database
from storage.port import JobStore
from tests.support import FakeClock, RecordingNotifier


@dataclass
class Core:
    desk: JobDesk
    worker: Worker
    jobs: JobStore
    notifier: RecordingNotifier
    clock: FakeClock
    metrics: Metrics
    #: Everything ``hailuo.assembly.build_core`` built (approvals, controls, audit, ...).
    assembled: AssembledCore

    async def new_job(
        self, spec: JobSpec | None = None, *, user_id: int = 42, images=None, **kw: object
    ) -> Job:
        request = JobRequest(
            guild_id=1,
            channel_id=2,
            user_id=user_id,
            spec=spec or JobSpec(mode=Mode.TEXT, prompt="a cat surfing"),
            images=images or {},
            **kw,  # type: ignore[arg-type]
        )
        return await self.desk.create(request)

    async def run_until(self, job_id: int, *states: JobStatus, steps: int = 50) -> Job:
        """Tick the worker, moving the clock, until the job reaches one of ``states``."""
        for _ in range(steps):
            job = await self.jobs.get(job_id)
            assert job is not None
            if job.status in states:
                return job
            await self.worker.tick()
            self.clock.advance(5)
        job = await self.jobs.get(job_id)
        raise AssertionError(f"job {job_id} stuck in {job.status if job else None}")


class NoModerators:
    """``ApprovalNotifier`` for a core whose test holds nothing for approval."""

    def __init__(self) -> None:
        self.posted: list[int] = []

    async def post_request(
        self, channel_id: int, job: Job, request: ApprovalRequest, image: StoredImage | None
    ) -> int:
        self.posted.append(job.id)
        return 1000 + job.id

    async def show_decision(self, job: Job, request: ApprovalRequest) -> None:
        return None


class NoRemover:
    """``VideoRemover`` that finds nothing to remove."""

    async def remove_video(self, job: Job) -> bool:
        return False


def core_settings(**changes: object) -> Settings:
    """Settings as the tests' cores use them: no provider configured (each test brings its own)."""
    return dataclasses.replace(Settings(discord_token=Secret("test-token")), **changes)  # type: ignore[arg-type]


def build_core(
    db: Database,
    clock: FakeClock,
    session: aiohttp.ClientSession,
    providers: dict[str, Provider],
    *,
    notifier: RecordingNotifier | None = None,
    policy: QuotaPolicy | None = None,
    config: WorkerConfig | None = None,
    shrinker: Shrinker | None = None,
    resilience: Resilience | None = None,
    serves: Callable[[str, JobSpec], bool] | None = None,
    approvals: ApprovalNotifier | None = None,
    remover: VideoRemover | None = None,
    settings: Settings | None = None,
    rng: random.Random | None = None,
) -> Core:
    """The bot's own core (``hailuo.assembly.build_core``) on the test's simulators (its
    random draws from ``rng``, a fixed seed unless given)."""
    notifier = notifier or RecordingNotifier()
    assembled = assemble(
        settings or core_settings(),
        db,
        session,
        clock,
        Ports(
            notifier=notifier, approvals=approvals or NoModerators(), remover=remover or NoRemover()
        ),
        Parts(
            providers=providers,
            quota=policy or QuotaPolicy(),
            config=config or WorkerConfig(poll_seconds=5),
            rng=rng or random.Random(7),
            downloader=Downloader(max_bytes=50 * 2**20, allow_private=True),
            shrinker=shrinker,
            resilience=resilience,
            serves=serves,
        ),
    )
    return Core(
        assembled.desk,
        assembled.worker,
        assembled.desk.jobs,
        notifier,
        clock,
        assembled.metrics,
        assembled,
    )
