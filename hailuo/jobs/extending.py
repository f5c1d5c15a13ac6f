"""Extend a delivered video from its last frame (issue 15, item 3).

The member presses **Extend** under a delivered video and writes the next prompt; the
video is fetched again (the posted attachment first: Discord keeps it as long as the
post; else the provider's result URL, asked afresh), its last frame is taken with
ffmpeg and goes through the same image intake as an uploaded first frame. The new job
is an ordinary image-to-video job: the same checks, cost and charge as ``/hailuo
animate`` (``JobDesk.create``), which the front end shows before it starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hailuo.jobs.capabilities import ImagePlan
from hailuo.jobs.links import FreshLinks
from hailuo.media.downloads import DownloadedVideo, Downloader, DownloadError
from hailuo.media.frames import FrameError, last_frame
from hailuo.media.intake import ImageIntake
from hailuo.model.errors import ProviderError, UserInputError
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused
from storage.port import JobStore

log = logging.getLogger(__name__)

#: Prepared frames kept waiting for a confirm at most (the oldest is dropped first).
MAX_WAITING = 200


@dataclass(frozen=True)
class ExtendFrame:
    """What an Extend job starts from: the source job, the next spec and the first frame."""

    source: Job
    spec: JobSpec
    mime: str
    data: bytes


def extended_spec(source: JobSpec, prompt: str) -> JobSpec:
    """The next clip: the source's model, resolution and duration, from a first frame."""
    return replace(source, mode=Mode.IMAGE, prompt=prompt.strip())


class Extender:
    def __init__(
        self, jobs: JobStore, links: FreshLinks, downloader: Downloader, intake: ImageIntake
    ) -> None:
        self.jobs = jobs
        self.links = links
        self.downloader = downloader
        self.intake = intake
        #: Frames prepared and waiting for their member's confirm, in this process only.
        self._waiting: dict[tuple[int, int], ExtendFrame] = {}

    def hold(self, user_id: int, frame: ExtendFrame) -> None:
        """Keep ``frame`` until its member confirms (the newest per member and video)."""
        while len(self._waiting) >= MAX_WAITING:
            self._waiting.pop(next(iter(self._waiting)))
        self._waiting[(user_id, frame.source.id)] = frame

    def take(self, user_id: int, job_id: int) -> ExtendFrame | None:
        """The frame the member's confirm starts from, once; None after a restart."""
        return self._waiting.pop((user_id, job_id), None)

    async def source(self, guild_id: int, job_id: int) -> Job:
        """The delivered job to extend, in this server; refused otherwise."""
        job = await self.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise ActionRefused("control.unknown_job", job_id=job_id)
        if job.status is not JobStatus.DELIVERED:
            raise ActionRefused("extend.not_delivered", job_id=job_id)
        return job

    async def frame(
        self,
        guild_id: int,
        job_id: int,
        prompt: str,
        *,
        attachment_url: str | None,
        providers: Sequence[str],
    ) -> ExtendFrame:
        """The next job's first frame: the delivered video's last frame, checked and prepared
        for ``providers`` like an upload."""
        job = await self.source(guild_id, job_id)
        video = await self._video(job, attachment_url)
        try:
            png = await last_frame(video.path)
        except FrameError as exc:
            log.warning("no last frame of %s: %s", job.log_context(), exc)
            raise ActionRefused("extend.no_frame", job_id=job_id) from None
        finally:
            await asyncio.to_thread(video.discard)
        plan: ImagePlan = self.intake.plan(providers)
        prepared = await self.intake.prepared_data(png, plan)
        return ExtendFrame(job, extended_spec(job.spec, prompt), prepared.mime, prepared.data)

    async def _video(self, job: Job, attachment_url: str | None) -> DownloadedVideo:
        """The posted attachment, else the provider's file at a fresh result URL."""
        if attachment_url:
            try:
                return await self.downloader.fetch(attachment_url)
            except DownloadError as exc:
                log.info("attachment of %s not fetched (%s); asking the provider", job.id, exc)
        try:
            url = await self.links.fresh_url(job.guild_id, job.id)
            return await self.downloader.fetch(url)
        except (DownloadError, ProviderError, UserInputError, ActionRefused) as exc:
            log.warning("no video to extend for %s: %s", job.log_context(), exc)
            raise ActionRefused("extend.video_gone", job_id=job.id) from None
