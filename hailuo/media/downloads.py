"""Fetch a finished video safely, and decide whether it goes up as a file or a link.

The result URL comes from a provider's reply, so it is treated as untrusted:
only http(s), no private or loopback addresses unless the owner allows them
(``HAILUO_ALLOW_PRIVATE_URLS``), no redirects to such addresses, a size cap
enforced while streaming, and never an ``Authorization`` header (the signed
URL lives on another host than the API, and the key must not travel there).

Downloads are written under the data directory (``tmp/`` beside the database,
on the same volume, swept at start-up by ``sweep_temporary``), never the
system's temp directory. A download first checks that the disk has room for
the video plus a margin; no room, or an ``OSError`` while writing (ENOSPC), is
a ``DownloadError`` with ``disk_full``: transient, the job waits and retries.
Each fetch has its own session whose resolver vets every address it returns
(``hailuo.media.netguard``), so the address connected to is the one that was
vetted, for every redirect hop: no second look-up can rebind the name. What
arrives must be an MP4 (an ``ftyp`` box of a video brand first), or the
attempt fails and nothing is posted.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from hailuo.media.netguard import (
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
#: The names of our temporary files, so a start-up sweep removes only ours.
TEMP_PREFIX = "hailuo-"
TEMP_SUFFIX = ".mp4"


class DownloadError(Exception):
    """The file could not be fetched. ``expired`` marks a URL that no longer serves it.

    ``disk_full`` marks a local fault, not the provider's: no room on our disk (or
    another ``OSError`` writing the file). It is transient: wait and retry, never refund.
    """

    def __init__(
        self,
        reason: str,
        *,
        expired: bool = False,
        too_large: bool = False,
        disk_full: bool = False,
    ) -> None:
        super().__init__(reason)
        self.expired = expired
        self.too_large = too_large
        self.disk_full = disk_full


def free_bytes(directory: Path) -> int:
    """Free space where ``directory`` lives (the disk probe; tests inject their own)."""
    return shutil.disk_usage(directory).free


def sweep_temporary(directory: Path) -> int:
    """Remove the downloads a crash left behind in ``directory``; return how many."""
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for leftover in directory.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("removed %d leftover download(s) from %s", removed, directory)
    return removed


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
        min_free: int = 0,
        free_space: Callable[[Path], int] = free_bytes,
        resolver: AbstractResolver | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.directory = directory
        #: Room kept free on top of the video's size (``HAILUO_MIN_FREE_MB``).
        self.min_free = min_free
        self.free_space = free_space
        self.resolver = resolver
        #: Which addresses may be connected to; ``policy`` exists for tests that need a
        #: loopback stand-in for a public address.
        self.policy: AddressPolicy = policy or (allow_any if allow_private else address_allowed)

    async def fetch(self, url: str) -> DownloadedVideo:
        """Stream ``url`` to a temporary file, refusing anything over ``max_bytes``."""
        await self._check_room(0)  # the margin alone, before asking for the file at all
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
                    await self._check_room(declared if declared is not None else self.max_bytes)
                    return await self._stream(resp)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, AddressRefused):
                    raise RefusedAddressError("refusing a private or loopback address") from None
                raise DownloadError(type(exc).__name__) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise DownloadError(type(exc).__name__) from None
        raise DownloadError("too many redirects")

    async def _check_room(self, expected: int) -> None:
        """Refuse to start a download the disk cannot hold (the expected size plus a margin)."""
        if self.directory is None:
            return
        try:
            free = await asyncio.to_thread(self.free_space, self.directory)
        except OSError as exc:
            raise DownloadError(f"disk probe failed: {exc.strerror}", disk_full=True) from None
        if free < expected + self.min_free:
            raise DownloadError("not enough free disk space", disk_full=True)

    async def _stream(self, resp: aiohttp.ClientResponse) -> DownloadedVideo:
        try:
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
                prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=self.directory, delete=False
            )
        except OSError as exc:
            raise DownloadError(f"cannot create the file: {exc.strerror}", disk_full=True) from None
        path = Path(handle.name)
        size = 0
        try:
            with handle:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadError("size over the cap", too_large=True)
                    await asyncio.to_thread(self._write, handle, chunk)
        except BaseException as exc:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            if isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError | TimeoutError):
                # ENOSPC and kin: our disk, not the provider's file; wait for room.
                raise DownloadError(f"writing failed: {exc.strerror}", disk_full=True) from None
            raise
        if size == 0:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise DownloadError("empty file")
        return DownloadedVideo(path=path, size=size)

    def _write(self, handle: IO[bytes], chunk: bytes) -> None:
        """One chunk to disk, on a thread (a seam: tests make it fail as a full disk would)."""
        handle.write(chunk)

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


def upload_limit(interaction: int | None, guild: int | None, default: int) -> int:
    """The largest file the bot may post in the job's channel (design, "upload limit").

    The interaction's ``attachment_size_limit`` decides: it already counts the
    server's boosts (and a 25 MiB or 20 MiB default that discord.py's tables
    predate). It may also count the member's own Nitro, which does not apply to
    the bot's post, so a boosted server's tier (above ``default``) caps it. With
    no interaction limit the server's tier decides, and ``default`` only when
    neither is known. A wrong guess upward is caught by the 413 fallback.
    """
    if interaction:
        if guild and guild > default:
            return min(interaction, guild)
        return interaction
    if guild:
        return guild
    return default


def plan_delivery(size: int, limit: int) -> DeliveryPlan:
    """Attach when the file fits the channel's upload limit; otherwise post a link.

    The one place that decides how a video goes up; ``limit`` 0 means nothing
    may be attached (the upload was refused for its size).
    """
    if limit and size <= limit:
        return DeliveryPlan(attach=True, limit=limit, reason="")
    return DeliveryPlan(attach=False, limit=limit, reason="delivery.too_large")
