"""The delivery step: fetch a succeeded job's video and post it, exactly once.

The provider's result URL is asked for at each try (it expires; most providers
hand out a fresh one), the file is downloaded, and ``plan_delivery`` decides
whether it goes up as an attachment (it fits the channel's ``upload_limit``);
a video over the limit (or refused with a 413) is re-encoded to fit
(``hailuo.media.shrink``) and posted with a note, and only when that fails does a link
go up, stating the size and the limit, with a Fresh link button.

Exactly once: a delivery attempt is counted just before posting, and a job
found with attempts is first looked for in the channel (the whole window since
its card), so it is never posted twice. When that look-up itself fails (no Read
Message History, an outage) the post goes ahead with the job's nonce and
``enforce_nonce``, which Discord deduplicates; the look-up never stalls a job.

A budget of time, not of tries: a fault (a provider's 5xx, a download cut
short, a full disk, a Discord 429 or 5xx) is retried with back-off and jitter,
paced by the delivery's age (``PacedByAge``), until the provider's file can no
longer be fetched (its ``result_lifetime`` from the task's success). Only a
permanent answer ends a delivery early: an expired URL the provider cannot
renew, or a channel lost for good (gone, or the bot lost access), and then the
member still gets the video by direct message where Discord allows. Whatever
ends it, the job ends ``delivery_failed`` with its reason and is refunded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from hailuo.jobs.notify import (
    ChannelLost,
    DirectMessagesClosed,
    Notifier,
    PostFailed,
    Shrunk,
    UploadTooLarge,
)
from hailuo.jobs.retry import PacedByAge
from hailuo.jobs.steps import Step, StepKit
from hailuo.media.downloads import (
    DeliveryPlan,
    DownloadedVideo,
    Downloader,
    DownloadError,
    plan_delivery,
    upload_limit,
)
from hailuo.media.shrink import Shrinker, ShrinkFailed
from hailuo.model.capability import HOUR, Table
from hailuo.model.errors import ProviderError
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from storage.jobs import StaleTransition

log = logging.getLogger(__name__)

#: Failure rules a member may read (each has a catalog entry).
DELIVERY_GAVE_UP = "job.delivery_failed"
RESULT_EXPIRED = "job.result_expired"  # the provider's file outlived its lifetime unposted
URL_EXPIRED = "provider.expired"  # the URL is dead and the provider cannot renew it
UNREACHABLE = "job.delivery_unreachable"  # channel lost for good and the member's DMs closed

#: Where the time the task succeeded is kept (the start of the file's lifetime).
SUCCEEDED_AT = "succeeded_at"
#: A provider the capability table does not know: the shortest documented lifetime.
UNKNOWN_LIFETIME = HOUR


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
        capabilities: Table,
    ) -> None:
        super().__init__(kit)
        #: Provider name -> what it accepts: how long its file lives, whether its URL renews.
        self.capabilities = capabilities
        #: Re-encodes a video over the upload limit to fit; None: such a video is a link.
        self.shrinker = shrinker
        self.notifier = notifier
        self.downloader = downloader
        #: Per-provider downloaders: the demo's files come from our own loopback server.
        self.downloaders = dict(downloaders or {})
        self.pacing = PacedByAge(
            shortest=self.config.delivery_retry_shortest, cap=self.config.delivery_retry_cap
        )

    async def deliver(self, job: Job) -> None:
        """Take one delivery attempt of a succeeded job; a surprise is retried, never lost."""
        try:
            await self._attempt(job)
        except StaleTransition:
            raise
        except Exception:
            # Not a fault we know: logged, and tried again later on the same budget
            # (the job neither stalls nor spins).
            log.exception("delivery step failed %s; trying again later", job.log_context())
            await self._retry(job)

    async def _attempt(self, job: Job) -> None:
        job = await self._started(job)
        if job.delivery_attempts > 0:
            found = await self._earlier_post(job)
            if found is not None:
                log.info("found an earlier delivery of %s", job.log_context())
                await self._delivered(job, found, job.delivery_kind or "attachment", None)
                return
        if self.clock() >= self._deadline(job):
            await self._give_up(job, RESULT_EXPIRED, {"hours": self._lifetime_hours(job)})
            return
        assert job.provider is not None and job.result_locator is not None
        try:
            url = await self.providers[job.provider].result_url(
                job.result_locator, job.provider_meta
            )
        except ProviderError as exc:
            log.warning("result URL failed %s: %s", job.log_context(), exc)
            await self._retry(job, exc.retry_after)
            return
        try:
            video = await self.downloaders.get(job.provider, self.downloader).fetch(url)
        except DownloadError as exc:
            log.warning("download failed %s: %s", job.log_context(), exc)
            if exc.too_large:
                too_large = DeliveryPlan(False, 0, "delivery.too_large_to_fetch")
                await self._post(job, None, url, too_large)
            elif exc.expired and not self._fresh_url(job):
                await self._give_up(job, URL_EXPIRED, {})
            else:  # a full disk (``disk_full``) included: ours, it passes; never refunded
                await self._retry(job)
            return
        except OSError as exc:
            # A full disk (or any local I/O fault) is ours and passes: retried, never refunded.
            log.warning("download failed locally %s: %s", job.log_context(), exc)
            await self._retry(job)
            return
        try:
            limit = upload_limit(
                job.attachment_limit,
                await self.notifier.guild_upload_limit(job.guild_id),
                self.config.default_upload_limit,
            )
            await self._post(job, video, url, plan_delivery(video.size, limit))
        finally:
            video.discard()

    # -- posting ---------------------------------------------------------------------------

    async def _post(
        self, job: Job, video: DownloadedVideo | None, url: str, plan: DeliveryPlan
    ) -> None:
        """Count the attempt, then post in the channel, else to the member directly."""
        await self._hold(job)  # one post per job: only while the job is ours
        job = await self.jobs.update(job, self.clock(), delivery_attempts=job.delivery_attempts + 1)
        try:
            try:
                message_id, kind = await self._post_in_channel(job, video, url, plan)
            except ChannelLost as lost:
                log.warning("channel lost for %s (%s); sending directly", job.log_context(), lost)
                message_id, kind = await self._post_direct(job, video, url, plan)
        except DirectMessagesClosed as exc:
            log.warning("member unreachable for %s: %s", job.log_context(), exc)
            await self._give_up(job, UNREACHABLE, {})
            return
        except PostFailed as exc:
            log.warning("posting failed %s: %s", job.log_context(), exc)
            await self._retry(job, exc.retry_after)
            return
        size = video.size if video is not None else None
        if size is not None:
            self.metrics.delivery(kind, size)
        await self._delivered(job, message_id, kind, size)

    async def _post_in_channel(
        self, job: Job, video: DownloadedVideo | None, url: str, plan: DeliveryPlan
    ) -> tuple[int, str]:
        if video is None:
            return await self.notifier.post_link(job, url, plan.reason), "link"
        limit = plan.limit
        if plan.attach:
            try:
                return await self.notifier.post_video(job, video.path, video.size), "attachment"
            except UploadTooLarge:
                limit = 0  # Discord refused what the known limits allowed
            except ChannelLost as lost:
                if not lost.permission_only:
                    raise
                # Files may not go up here (Attach Files missing); a link still may.
                return await self.notifier.post_link(job, url, "delivery.cannot_attach"), "link"
        if not limit:
            default = self.config.default_upload_limit
            limit = default if video.size > default else max(1, video.size // 2)
        shrunk = await self._post_shrunk(job, video, url, limit)
        if shrunk is not None:
            return shrunk, "attachment"
        message_id = await self.notifier.post_link(
            job, url, "delivery.too_large", size=video.size, limit=limit
        )
        return message_id, "link"

    async def _post_shrunk(
        self, job: Job, video: DownloadedVideo, url: str, limit: int
    ) -> int | None:
        """Post a re-encode that fits ``limit`` with a note; None when there is none.

        Raises what posting raises (PostFailed, ChannelLost) except a refusal of the
        file itself; the re-encode is deleted on every path.
        """
        if self.shrinker is None:
            return None
        try:
            smaller = await self.shrinker.shrink(video.path, limit)
        except ShrinkFailed as exc:
            log.warning("could not shrink %s: %s", job.log_context(), exc)
            return None
        try:
            note = Shrunk(url, video.size, limit)
            return await self.notifier.post_video(job, smaller.path, smaller.size, shrunk=note)
        except UploadTooLarge:
            log.warning("the shrunk video was still refused %s", job.log_context())
            return None
        except ChannelLost as lost:
            if not lost.permission_only:
                raise
            return None
        finally:
            smaller.discard()

    async def _post_direct(
        self, job: Job, video: DownloadedVideo | None, url: str, plan: DeliveryPlan
    ) -> tuple[int, str]:
        """The member's direct messages: no server boost there, so the default limit."""
        reason = plan.reason or "delivery.too_large"
        if video is None:
            return await self.notifier.dm_link(job, url, reason), "link"
        limit = self.config.default_upload_limit
        if plan_delivery(video.size, limit).attach:
            try:
                return await self.notifier.dm_video(job, video.path, video.size), "attachment"
            except UploadTooLarge:
                pass
        message_id = await self.notifier.dm_link(
            job, url, "delivery.too_large", size=video.size, limit=limit
        )
        return message_id, "link"

    async def _earlier_post(self, job: Job) -> int | None:
        """The post of an earlier attempt, if the look-up can tell; None lets the post go on."""
        try:
            return await self.notifier.find_delivery(job)
        except PostFailed as exc:
            # Never a stall: the nonce (with enforce_nonce) still guards against a twin.
            log.warning(
                "could not look for an earlier post of %s (%s); posting with the job's nonce",
                job.log_context(),
                exc,
            )
            return None

    # -- the budget of time ----------------------------------------------------------------

    async def _started(self, job: Job) -> Job:
        """Note when the task succeeded, once: the file's lifetime counts from then.

        The success transition is the last write of a job not yet tried, so its
        ``updated_at`` is that moment.
        """
        if SUCCEEDED_AT in job.provider_meta:
            return job
        meta = {**job.provider_meta, SUCCEEDED_AT: job.updated_at}
        return await self.jobs.update(job, self.clock(), provider_meta=meta)

    def _deadline(self, job: Job) -> float:
        return self._succeeded_at(job) + self._lifetime(job)

    @staticmethod
    def _succeeded_at(job: Job) -> float:
        value = job.provider_meta.get(SUCCEEDED_AT)
        return float(value) if isinstance(value, int | float) else job.updated_at

    def _lifetime(self, job: Job) -> float:
        capability = self.capabilities.get(job.provider or "")
        return capability.result_lifetime if capability else UNKNOWN_LIFETIME

    def _lifetime_hours(self, job: Job) -> int:
        return max(1, round(self._lifetime(job) / HOUR))

    def _fresh_url(self, job: Job) -> bool:
        capability = self.capabilities.get(job.provider or "")
        return capability.fresh_url if capability else False

    async def _retry(self, job: Job, retry_after: float | None = None) -> None:
        """Come back later, paced by the delivery's age, never past the file's lifetime."""
        now = self.clock()
        fresh = await self.jobs.get(job.id)
        if fresh is None or fresh.status is not JobStatus.SUCCEEDED:
            return
        delay = self.pacing.delay(now - self._succeeded_at(fresh), self.rng, retry_after)
        next_at = min(now + delay, max(now, self._deadline(fresh)))
        await self.jobs.update(fresh, now, next_delivery_at=next_at)

    async def _give_up(self, job: Job, rule: str, params: dict[str, object]) -> None:
        fresh = await self.jobs.get(job.id)
        if fresh is None or fresh.status is not JobStatus.SUCCEEDED:
            return
        await self._fail(fresh, rule, dict(params), to=JobStatus.DELIVERY_FAILED)

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
