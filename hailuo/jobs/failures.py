"""Ending a job as failed: the write that settles its credits, a strike, and its card.

Every step of the worker ends a job this way, so the rules live in one place:
the terminal write is shielded (a shutdown in the middle must not leave the
credits unsettled), a provider's content refusal counts against the member,
and the status card shows the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hailuo.clock import Clock
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from hailuo.moderation.screening import StrikeOutcome, counts_as_strike, record_strike
from storage.port import Storage

log = logging.getLogger(__name__)

#: What a member is told privately when a provider's content refusal counts against them.
STRIKE_NOTICE = "moderation.strike_notice"
#: ... and when that strike blocks them (until a moderator lifts the block).
STRIKE_BLOCKED = "moderation.strike_blocked"


@dataclass(frozen=True)
class Failures:
    """Ends jobs as failed, for every step of the worker (see ``steps.Fail``)."""

    storage: Storage
    clock: Clock
    show: Callable[[Job], Awaitable[None]]
    #: A private word to the job's member (``Notifier.tell_member``): a strike against them.
    tell: Callable[[Job, str, Mapping[str, object]], Awaitable[bool]] | None = None

    async def fail(
        self,
        job: Job,
        rule: str,
        params: dict[str, Any],
        *,
        to: JobStatus = JobStatus.FAILED,
    ) -> None:
        # Shielded: a shutdown in the middle must not leave the credits unsettled.
        job = await asyncio.shield(
            self.storage.jobs.transition(
                job, to, self.clock(), reason=rule, failure_rule=rule, failure_params=params
            )
        )
        log.info("ended %s rule=%s", job.log_context(), rule)
        if counts_as_strike(rule):
            await self._strike(job)
        await self.show(job)

    async def _strike(self, job: Job) -> None:
        """A provider's content refusal counts against the member (at most once per job);
        at the server's threshold they are blocked. Audited, so the log channel hears of it."""
        try:
            outcome = await asyncio.shield(
                record_strike(
                    self.storage,
                    self.clock,
                    guild_id=job.guild_id,
                    user_id=job.user_id,
                    job_id=job.id,
                )
            )
        except Exception:  # the job has ended either way; a lost strike is only logged
            log.exception("could not record a strike for %s", job.log_context())
            return
        if outcome.newly_blocked:
            log.info("blocked after %d strikes %s", outcome.strikes, job.log_context())
        if self.tell is None or not outcome.counted:
            return
        params = strike_params(outcome, job)
        if outcome.newly_blocked:
            # The strike that blocks is told too, privately, with whom to ask. A block by
            # strikes has no end time (``record_strike``): it lasts until a moderator lifts it.
            await self.tell(job, STRIKE_BLOCKED, params)
        elif not outcome.blocked:
            # The member learns of a strike when it is counted, not only once blocked.
            await self.tell(job, STRIKE_NOTICE, params)


def strike_params(outcome: StrikeOutcome, job: Job) -> dict[str, object]:
    """The numbers of a strike notice: how many, of how many, within how many days."""
    return {
        "job_id": job.id,
        "count": outcome.strikes,
        "threshold": outcome.threshold,
        "days": max(1, round(outcome.window_seconds / 86400)),
    }
