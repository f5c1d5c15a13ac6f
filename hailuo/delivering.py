"""The delivery step: fetch a succeeded job's video and post it, exactly once.

The provider's result URL is fetched (it expires, so it is asked for at each
attempt), and the video goes up as an attachment when it fits the member's,
the server's and the default upload limit, else re-encoded to fit
(``hailuo.shrink``; a 413 takes the same way), and as a link only when that
fails. A delivery attempt is counted before posting; a job found with
attempts but no posted message id is first looked for in the channel
(plus the nonce Discord deduplicates on), so it is never posted twice. A
failed attempt is retried with back-off until ``max_delivery_attempts``, then the
job ends ``delivery_failed`` and is refunded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from hailuo.delivery import DownloadedVideo, Downloader, DownloadError, plan_delivery
from hailuo.errors import ProviderError
from hailuo.notify import Notifier, PostFailed, Shrunk, UploadTooLarge
from hailuo.shrink import Shrinker, ShrinkFailed
from hailuo.status import JobStatus
from hailuo.steps import Step, StepKit
from storage.jobs import Job

log = logging.getLogger(__name__)

#: The failure rule a member may read (it has a catalog entry).
DELIVERY_GAVE_UP = "job.delivery_failed"


class Deliverer(Step):
    """Posts each succeeded job's video (or its link) and records the delivery."""

    def __init__(
        self,
        kit: StepKit,
        *,
        notifier: Notifier,
        downloader: Downloader,
        downloaders: Mapping[str, Downloader] | None,
        shrinker: Shrinker | None = None,
    ) -> None:
        super().__init__(kit)
        #: Re-encodes a video over the upload limit to fit; None: such a video is a link.
        self.shrinker = shrinker
        self.notifier = notifier
        self.downloader = downloader
        #: Per-provider downloaders: the demo's files come from our own loopback server.
        self.downloaders = dict(downloaders or {})

    async def deliver(self, job: Job) -> None:
        """Take one delivery attempt of a succeeded job."""
        now = self.clock()
        if job.delivery_attempts > 0:
            found = await self.notifier.find_delivery(job)
            if found is not None:
                log.info("found an earlier delivery of %s", job.log_context())
                await self._delivered(job, found, job.delivery_kind or "attachment", None)
                return
        if job.delivery_attempts >= self.config.max_delivery_attempts:
            await self._fail(job, DELIVERY_GAVE_UP, {}, to=JobStatus.DELIVERY_FAILED)
            return
        job = await self.jobs.update(job, now, delivery_attempts=job.delivery_attempts + 1)
        assert job.provider is not None and job.result_locator is not None
        try:
            url = await self.providers[job.provider].result_url(
                job.result_locator, job.provider_meta
            )
        except ProviderError as exc:
            log.warning("result URL failed %s: %s", job.log_context(), exc)
            await self._retry(job)
            return
        try:
            video = await self.downloaders.get(job.provider, self.downloader).fetch(url)
        except DownloadError as exc:
            log.warning("download failed %s: %s", job.log_context(), exc)
            if exc.too_large:
                link_id = await self._post_link(job, url, "delivery.too_large_to_fetch")
                if link_id is not None:
                    await self._delivered(job, link_id, "link", None)
                return
            await self._retry(job)
            return
        try:
            limits = [
                job.attachment_limit,
                await self.notifier.guild_upload_limit(job.guild_id),
                self.config.default_upload_limit,
            ]
            plan = plan_delivery(video.size, limits)
            message_id: int | None = None
            kind = "attachment"
            if plan.attach:
                try:
                    message_id = await self.notifier.post_video(job, video.path, video.size)
                except UploadTooLarge:
                    plan = plan_delivery(video.size, [])
            if message_id is None:
                message_id, kind = await self._fit_or_link(job, video, url, plan.limit)
            if message_id is None:
                return
            self.metrics.delivery(kind, video.size)
            await self._delivered(job, message_id, kind, video.size)
        except PostFailed as exc:
            log.warning("posting failed %s: %s", job.log_context(), exc)
            await self._retry(job)
        finally:
            video.discard()

    async def _fit_or_link(
        self, job: Job, video: DownloadedVideo, url: str, limit: int
    ) -> tuple[int | None, str]:
        """Post a re-encode that fits ``limit``; a link (size, limit, fresh-link button) if none.

        ``limit`` 0 means Discord refused a file the known limits allowed (413): the
        default limit is aimed at then, or half the file when even that was refused.
        Raises PostFailed as posting does; the re-encode is deleted on every path.
        """
        if not limit:
            default = self.config.default_upload_limit
            limit = default if video.size > default else max(1, video.size // 2)
        if self.shrinker is not None:
            try:
                smaller = await self.shrinker.shrink(video.path, limit)
            except ShrinkFailed as exc:
                log.warning("could not shrink %s: %s", job.log_context(), exc)
            else:
                try:
                    note = Shrunk(url, video.size, limit)
                    posted = await self.notifier.post_video(
                        job, smaller.path, smaller.size, shrunk=note
                    )
                    return posted, "attachment"
                except UploadTooLarge:
                    log.warning("the shrunk video was still refused %s", job.log_context())
                finally:
                    smaller.discard()
        return await self._post_link(
            job, url, "delivery.too_large", size=video.size, limit=limit
        ), "link"

    async def _post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int | None:
        try:
            return await self.notifier.post_link(job, url, reason, size=size, limit=limit)
        except PostFailed as exc:
            log.warning("posting a link failed %s: %s", job.log_context(), exc)
            await self._retry(job)
            return None

    async def _retry(self, job: Job) -> None:
        now = self.clock()
        fresh = await self.jobs.get(job.id)
        if fresh is None or fresh.status is not JobStatus.SUCCEEDED:
            return
        delay = self.backoff.delay(fresh.delivery_attempts, self.rng)
        await self.jobs.update(fresh, now, next_delivery_at=now + delay)

    async def _delivered(self, job: Job, message_id: int, kind: str, size: int | None) -> None:
        job = await asyncio.shield(
            self.jobs.transition(
                job,
                JobStatus.DELIVERED,
                self.clock(),
                reason="video delivered",
                delivered_message_id=message_id,
                delivery_kind=kind,
                delivery_bytes=size,
            )
        )
        log.info("delivered %s as %s", job.log_context(), kind)
        await self._show(job)
