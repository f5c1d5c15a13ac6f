"""Taking in an ``/hailuo animate`` request's images: bounded in bytes, in threads and in number.

Between the "checking your image" answer and the job's row, a request is not
yet in the database, so the in-flight caps would not see it: a member with
one free slot could send five requests at once and have five images fetched
and decoded. :meth:`ImageIntake.checking` counts such requests against the
caps (the job's row is still re-checked when it is created); a request beyond
them is refused before anything is downloaded.

The cog asks this service for everything about the images: the plan (the rules
of the providers that may receive them), the cheap check of what Discord
declared, then the fetch and the full check. The attachment is streamed into a
buffer that stops at the image byte limit, whatever size Discord declared, and
decoded on :class:`ImageWorkers`, never on the loop's default executor.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp

from hailuo.jobs.capabilities import ImagePlan, image_plan
from hailuo.media.images import check_declared
from hailuo.media.preparing import ImageWorkers, PreparedImage
from hailuo.model.capability import Table
from hailuo.model.errors import QuotaExceeded, UserInputError
from hailuo.money.credits import PolicySource

log = logging.getLogger(__name__)

InFlight = Callable[[int, int], Awaitable[tuple[int, int]]]

CHUNK = 64 * 1024
#: A Discord CDN file of at most 20 MB: generous, and still no request hangs forever.
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=20)


class ImageIntake:
    """Fetches and checks attachments, counting requests being checked against the caps."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        in_flight: InFlight,
        policy: PolicySource,
        workers: ImageWorkers,
        capabilities: Table,
    ) -> None:
        self._session = session
        self._capabilities = capabilities
        self._in_flight = in_flight
        self._policy = policy
        self.workers = workers
        self._members: Counter[tuple[int, int]] = Counter()
        self._guilds: Counter[int] = Counter()

    def checking_now(self, guild_id: int, user_id: int) -> int:
        """How many of the member's requests are being checked (tests, metrics)."""
        return self._members[(guild_id, user_id)]

    @contextlib.asynccontextmanager
    async def checking(self, guild_id: int, user_id: int) -> AsyncIterator[None]:
        """Hold one of the member's in-flight slots while their images are checked.

        The jobs in flight are read first; the slot is then taken with no await
        between the count and the increment, so concurrent requests cannot all
        see the same free slot.
        """
        policy = await self._policy(guild_id)
        member, guild = await self._in_flight(guild_id, user_id)
        key = (guild_id, user_id)
        if member + self._members[key] >= policy.max_jobs_per_member:
            raise QuotaExceeded("quota.member_in_flight", maximum=policy.max_jobs_per_member)
        if guild + self._guilds[guild_id] >= policy.max_jobs_per_guild:
            raise QuotaExceeded("quota.guild_in_flight", maximum=policy.max_jobs_per_guild)
        self._members[key] += 1
        self._guilds[guild_id] += 1
        try:
            yield
        finally:
            self._members[key] -= 1
            self._guilds[guild_id] -= 1
            self._members += Counter()  # drop the zeros
            self._guilds += Counter()

    def plan(self, providers: Sequence[str]) -> ImagePlan:
        """What the images must be for ``providers`` (those that may receive them)."""
        return image_plan(providers, self._capabilities)

    @staticmethod
    def check_declared(
        plan: ImagePlan,
        *,
        content_type: str | None,
        size: int | None,
        width: int | None,
        height: int | None,
    ) -> None:
        """The cheap pass on what the attachment declares, before anything is fetched."""
        check_declared(
            content_type=content_type, size=size, width=width, height=height, rules=plan.check
        )

    async def prepared(self, url: str, plan: ImagePlan) -> PreparedImage:
        """The attachment at ``url`` fetched, checked against ``plan`` and re-encoded."""
        async with self.workers.slot():
            data = await self.read(url, plan.check.max_bytes)
            checked = await self.workers.inspect(data, plan.check)
            return await self.workers.prepare(
                checked, accepted_formats=plan.send_formats, max_bytes=plan.max_bytes
            )

    async def prepared_data(self, data: bytes, plan: ImagePlan) -> PreparedImage:
        """Bytes the bot made itself (an Extend's last frame), checked and re-encoded like
        an upload, so a provider receives the same kind of image either way."""
        if len(data) >= plan.check.max_bytes:
            raise UserInputError("image.too_big", limit=plan.check.max_bytes, actual=len(data))
        async with self.workers.slot():
            checked = await self.workers.inspect(data, plan.check)
            return await self.workers.prepare(
                checked, accepted_formats=plan.send_formats, max_bytes=plan.max_bytes
            )

    async def read(self, url: str, limit: int) -> bytes:
        """The file's bytes, refused at ``limit`` (exclusive) whatever size was declared."""
        body = bytearray()
        try:
            async with self._session.get(url, timeout=TIMEOUT) as resp:
                if resp.status != 200:
                    log.warning("could not fetch an attachment: HTTP %s", resp.status)
                    raise UserInputError("image.corrupt")
                declared = resp.content_length
                if declared is not None and declared >= limit:
                    raise UserInputError("image.too_big", limit=limit, actual=declared)
                async for chunk in resp.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) >= limit:
                        raise UserInputError("image.too_big_streamed", limit=limit)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("could not fetch an attachment: %s", type(exc).__name__)
            raise UserInputError("image.corrupt") from None
        return bytes(body)
