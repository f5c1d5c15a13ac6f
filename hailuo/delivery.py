"""Fetch a finished video safely, and decide whether it goes up as a file or a link.

The result URL comes from a provider's reply, so it is treated as untrusted:
only http(s), no private or loopback addresses unless the owner allows them
(``HAILUO_ALLOW_PRIVATE_URLS``), no redirects to such addresses, a size cap
enforced while streaming, and never an ``Authorization`` header (the signed
URL lives on another host than the API, and the key must not travel there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_REDIRECTS = 3


class DownloadError(Exception):
    """The file could not be fetched. ``expired`` marks a URL that no longer serves it."""

    def __init__(self, reason: str, *, expired: bool = False, too_large: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired
        self.too_large = too_large


@dataclass(frozen=True)
class DownloadedVideo:
    path: Path
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Downloader:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        max_bytes: int,
        allow_private: bool,
        directory: Path | None = None,
    ) -> None:
        self.session = session
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.directory = directory

    async def fetch(self, url: str) -> DownloadedVideo:
        """Stream ``url`` to a temporary file, refusing anything over ``max_bytes``."""
        for _ in range(MAX_REDIRECTS + 1):
            await self._check_url(url)
            timeout = aiohttp.ClientTimeout(total=600, sock_connect=15, sock_read=60)
            try:
                async with self.session.get(url, allow_redirects=False, timeout=timeout) as resp:
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

    async def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadError("not an http(s) URL")
        if self.allow_private:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
            )
        except OSError:
            raise DownloadError("host does not resolve") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise DownloadError("refusing a private or loopback address")


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
