"""The job service's front door: check what a request may cost, create the job, recover.

Creating a job is one transaction: the member's remaining credits and the
in-flight caps are read and the job row, its images and the reservation are
written under the same ``BEGIN IMMEDIATE``, so two requests racing for the
last credit cannot both win. The lifecycle after creation is ``worker.py``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hailuo.clock import Clock
from hailuo.errors import QuotaExceeded
from hailuo.quotas import Balance, QuotaPolicy, cost_of, current_period
from hailuo.spec import JobSpec
from hailuo.status import JobStatus
from providers.base import PreparedInput
from storage.db import Database, Tx
from storage.jobs import Job, JobRepository, NewJob
from storage.ledger import LedgerRepository

log = logging.getLogger(__name__)

PolicySource = Callable[[int], Awaitable[QuotaPolicy]]


@dataclass(frozen=True)
class JobRequest:
    guild_id: int
    channel_id: int
    user_id: int
    spec: JobSpec
    interaction_id: int | None = None
    status_message_id: int | None = None
    locale: str = "en-US"
    attachment_limit: int | None = None
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class JobDesk:
    """Admits new jobs against the quota and answers the member's questions about credits."""

    def __init__(
        self, db: Database, *, clock: Clock, policy: PolicySource, on_created: Callable[[], None]
    ) -> None:
        self.db = db
        self.jobs = JobRepository(db)
        self.ledger = LedgerRepository(db)
        self.clock = clock
        self.policy = policy
        self._on_created = on_created

    async def balance(self, guild_id: int, user_id: int, tx: Tx | None = None) -> Balance:
        policy = await self.policy(guild_id)
        period = current_period(self.clock(), policy.timezone)
        usage = await self.ledger.usage(guild_id, user_id, period.key, tx)
        return Balance(
            allowance=policy.daily_credits,
            used=usage.used,
            reserved=usage.reserved,
            renews_at=period.renews_at,
        )

    async def precheck(self, guild_id: int, user_id: int, spec: JobSpec) -> int:
        """A read-only look at credits and caps before anything is downloaded; returns the cost."""
        cost = cost_of(spec)
        balance = await self.balance(guild_id, user_id)
        self._check_credits(balance, cost)
        return cost

    async def create(self, request: JobRequest) -> Job:
        """Reserve the credits and create the job, or raise QuotaExceeded with nothing written."""
        policy = await self.policy(request.guild_id)
        cost = cost_of(request.spec)
        now = self.clock()
        period = current_period(now, policy.timezone)
        async with self.db.transaction() as tx:
            member, guild = await self.jobs.in_flight(tx, request.guild_id, request.user_id)
            if member >= policy.max_jobs_per_member:
                raise QuotaExceeded("quota.member_in_flight", maximum=policy.max_jobs_per_member)
            if guild >= policy.max_jobs_per_guild:
                raise QuotaExceeded("quota.guild_in_flight", maximum=policy.max_jobs_per_guild)
            balance = await self.balance(request.guild_id, request.user_id, tx)
            self._check_credits(balance, cost)
            job_id = await self.jobs.create(
                tx,
                NewJob(
                    guild_id=request.guild_id,
                    channel_id=request.channel_id,
                    user_id=request.user_id,
                    spec=request.spec,
                    cost=cost,
                    period=period.key,
                    status=JobStatus.QUEUED,
                    interaction_id=request.interaction_id,
                    status_message_id=request.status_message_id,
                    locale=request.locale,
                    attachment_limit=request.attachment_limit,
                    images=request.images,
                ),
                now,
            )
            job = await self.jobs.get_in(tx, job_id)
        assert job is not None
        log.info("created %s cost=%d", job.log_context(), cost)
        self._on_created()
        return job

    @staticmethod
    def _check_credits(balance: Balance, cost: int) -> None:
        if cost > balance.remaining:
            raise QuotaExceeded(
                "quota.credits",
                cost=cost,
                remaining=balance.remaining,
                allowance=balance.allowance,
                renews_at=int(balance.renews_at),
            )


async def prepared_input(jobs: JobRepository, job: Job) -> PreparedInput:
    """The job as a provider receives it: the spec and its stored images as data URLs."""
    stored = await jobs.images(job.id)
    urls = {role: _data_url(image.mime, image.data) for role, image in stored.items()}
    return PreparedInput(spec=job.spec, first_frame=urls.get("first"), last_frame=urls.get("last"))


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
