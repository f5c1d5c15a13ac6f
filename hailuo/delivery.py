"""Fetch a finished video safely, and decide whether it goes up as a file or a link.

The result URL comes from a provider's reply, so it is treated as untrusted:
only http(s), no private or loopback addresses unless the owner allows them
(``HAILUO_ALLOW_PRIVATE_URLS``), no redirects to such addresses, a size cap
enforced while streaming, and never an ``Authorization`` header (the signed
URL lives on another host than the API, and the key must not travel there).

Each fetch has its own session whose resolver vets every address it returns
(``hailuo.netguard``), so the address connected to is the one that was
vetted, for every redirect hop: no second look-up can rebind the name. What
arrives must be an MP4 (an ``ftyp`` box of a video brand first), or the
attempt fails and nothing is posted.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from hailuo.netguard import (
    AddressPolicy,
    AddressRefused,
    VettingResolver,
    address_allowed,
    allow_any,
    is_literal,
    literal_allowed,
)

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_REDIRECTS = 3


class DownloadError(Exception):
    """The file could not be fetched. ``expired`` marks a URL that no longer serves it."""

    def __init__(self, reason: str, *, expired: bool = False, too_large: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired
        self.too_large = too_large


class RefusedAddressError(DownloadError):
    """The URL, a redirect or its DNS answer points at a private or loopback address."""


class NotAVideoError(DownloadError):
    """The bytes are not an MP4 (an error page, an image, noise): never posted."""


#: Major brands of the ``ftyp`` box of MP4 / QuickTime / 3GP video files.
VIDEO_BRANDS: Final = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9"}
    | {b"mp41", b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"qt  "}
    | {b"dash", b"msdh", b"msix", b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3g2a", b"MSNV"}
    | {b"f4v ", b"XAVC", b"mmp4"}
)
#: Enough of the file to read its ``ftyp`` box.
HEAD_BYTES = 64


def mp4_problem(head: bytes) -> str | None:
    """Why ``head`` (a file's first bytes) is not the start of an MP4 video, or None."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return "not an MP4: no ftyp box at the start"
    size = int.from_bytes(head[:4], "big")
    if size < 16 or size > 4096:  # 8-byte header + major brand + minor version, at least
        return "not an MP4: implausible ftyp box size"
    if head[8:12] not in VIDEO_BRANDS:
        return f"not an MP4 video: major brand {head[8:12]!r}"
    return None


@dataclass(frozen=True)
class DownloadedVideo:
    path: Path
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Downloader:
    """Fetches result files; ``resolver`` (tests) replaces the system's DNS, never the vetting."""

    def __init__(
        self,
        *,
        max_bytes: int,
        allow_private: bool,
        directory: Path | None = None,
        resolver: AbstractResolver | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.directory = directory
        self.resolver = resolver
        #: Which addresses may be connected to; ``policy`` exists for tests that need a
        #: loopback stand-in for a public address.
        self.policy: AddressPolicy = policy or (allow_any if allow_private else address_allowed)

    async def fetch(self, url: str) -> DownloadedVideo:
        """Stream ``url`` to a temporary file, refusing anything over ``max_bytes``."""
        owned = self.resolver is None
        inner = aiohttp.DefaultResolver() if self.resolver is None else self.resolver
        resolver = VettingResolver(inner, self.policy, owns_inner=owned)
        connector = aiohttp.TCPConnector(resolver=resolver)
        try:
            async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
                video = await self._follow(session, url)
        finally:
            await resolver.close()
        problem = await asyncio.to_thread(_sniff, video.path)
        if problem is not None:
            await asyncio.to_thread(video.discard)
            raise NotAVideoError(problem)
        return video

    async def _follow(self, session: aiohttp.ClientSession, url: str) -> DownloadedVideo:
        """Request ``url``, following up to ``MAX_REDIRECTS`` redirects, each one vetted."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_url(url)
            timeout = aiohttp.ClientTimeout(total=600, sock_connect=15, sock_read=60)
            try:
                async with session.get(url, allow_redirects=False, timeout=timeout) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = str(resp.url.join(URL(resp.headers["Location"])))
                        continue
                    if resp.status in (403, 404, 410):
                        raise DownloadError(f"HTTP {resp.status}", expired=True)
                    if resp.status != 200:
                        raise DownloadError(f"HTTP {resp.status}")
                    declared = resp.content_length
                    if declared is not None and declared > self.max_bytes:
                        raise DownloadError("declared size over the cap", too_large=True)
                    return await self._stream(resp)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):
                    raise RefusedAddressError("refusing a private or loopback address") from None
                raise DownloadError(type(exc).__name__) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise DownloadError(type(exc).__name__) from None
        raise DownloadError("too many redirects")

    async def _stream(self, resp: aiohttp.ClientResponse) -> DownloadedVideo:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
            prefix="hailuo-", suffix=".mp4", dir=self.directory, delete=False
        )
        path = Path(handle.name)
        size = 0
        try:
            with handle:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadError("size over the cap", too_large=True)
                    await asyncio.to_thread(handle.write, chunk)
        except BaseException:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise
        if size == 0:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise DownloadError("empty file")
        return DownloadedVideo(path=path, size=size)

    def _check_url(self, url: str) -> None:
        """The scheme, and a literal address (names are vetted by the session's resolver)."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise DownloadError("not an http(s) URL") from None
        host = parsed.raw_host
        if parsed.scheme not in ("http", "https") or not host:
            raise DownloadError("not an http(s) URL")
        if is_literal(host) and not literal_allowed(host, self.policy):
            raise RefusedAddressError("refusing a private or loopback address")


def _sniff(path: Path) -> str | None:
    with path.open("rb") as handle:
        return mp4_problem(handle.read(HEAD_BYTES))


@dataclass(frozen=True)
class DeliveryPlan:
    attach: bool
    limit: int
    reason: str  # why a link, when not attaching ("too_large_for_upload" or "")


def plan_delivery(size: int, limits: list[int | None]) -> DeliveryPlan:
    """Attach when the file fits the smallest known limit; otherwise post a link."""
    known = [limit for limit in limits if limit]
    limit = min(known) if known else 0
    if limit and size <= limit:
        return DeliveryPlan(attach=True, limit=limit, reason="")
    return DeliveryPlan(attach=False, limit=limit, reason="delivery.too_large")
