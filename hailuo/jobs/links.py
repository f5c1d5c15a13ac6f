"""A fresh result URL for a finished job: what the link message's **Fresh link** button asks.

A link is posted when a video cannot be attached, and providers' result URLs
expire (Novita's after an hour, MiniMax's after about 9 h). The provider is asked
again for the job's stored result locator, as the delivery step does at each
attempt, so a member who comes back later still gets the file while the provider
keeps it. Free of Discord; ``cogs/links.py`` renders the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hailuo.model.errors import ProviderError
from hailuo.model.provider import Provider
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused
from storage.port import JobStore

log = logging.getLogger(__name__)

#: States in which the provider holds a finished video for the job.
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.DELIVERED})


class FreshLinks:
    """The Fresh link button's service: the job's store and the providers, bound once."""

    def __init__(self, jobs: JobStore, providers: Mapping[str, Provider]) -> None:
        self._jobs = jobs
        self._providers = providers

    async def fresh_url(self, guild_id: int, job_id: int) -> str:
        """A new URL of job ``job_id``'s video; raises ``ActionRefused`` with the reason."""
        return await fresh_url(self._jobs, self._providers, guild_id, job_id)


async def fresh_url(
    jobs: JobStore, providers: Mapping[str, Provider], guild_id: int, job_id: int
) -> str:
    """A new URL of job ``job_id``'s video; raises ``ActionRefused`` with the reason."""
    job = await jobs.get(job_id)
    if job is None or job.guild_id != guild_id:
        raise ActionRefused("control.unknown_job", job_id=job_id)
    provider = providers.get(job.provider or "")
    if job.status not in FINISHED or provider is None or job.result_locator is None:
        raise ActionRefused("control.fresh.no_video", job_id=job_id)
    try:
        return await provider.result_url(job.result_locator, job.provider_meta)
    except ProviderError as exc:
        log.warning("fresh result URL failed %s: %s", job.log_context(), exc)
        raise ActionRefused("control.fresh.failed", job_id=job_id) from None
