"""Build the job core (desk + worker) against loopback provider simulators, as bot.py does."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

import aiohttp

from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.jobs.submitting import prepared_input
from hailuo.jobs.worker import Worker, WorkerConfig
from hailuo.media.downloads import Downloader
from hailuo.media.shrink import Shrinker
from hailuo.model.job import Job
from hailuo.model.provider import Provider
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from hailuo.web.metrics import Metrics
from providers.registry import TABLE
from storage.db import Database
from storage.jobs import JobRepository
from tests.support import FakeClock, RecordingNotifier


@dataclass
class Core:
    desk: JobDesk
    worker: Worker
    jobs: JobRepository
    notifier: RecordingNotifier
    clock: FakeClock
    metrics: Metrics

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
) -> Core:
    jobs = JobRepository(db)
    notifier = notifier or RecordingNotifier()
    metrics = Metrics()
    the_policy = policy or QuotaPolicy()

    async def policy_for(guild_id: int) -> QuotaPolicy:
        return the_policy

    worker = Worker(
        jobs,
        providers,
        list(providers),
        capabilities=TABLE,
        notifier=notifier,
        downloader=Downloader(max_bytes=50 * 2**20, allow_private=True),
        clock=clock,
        rng=random.Random(7),
        metrics=metrics,
        config=config or WorkerConfig(poll_seconds=5),
        prepare=partial(prepared_input, jobs),
        shrinker=shrinker,
    )
    desk = JobDesk(db, clock=clock, policy=policy_for, on_created=worker.wake)
    return Core(desk, worker, jobs, notifier, clock, metrics)
