"""What the job service tells the outside world, as an interface the front end implements.

``hailuo/`` never imports discord: the Discord layer (``cogs/notifier.py``)
implements ``Notifier``; the CLI and the tests implement it too. Texts are
rendered by the implementer from the catalog, keyed by the job's state and
failure rule, so the core never holds member-facing words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from storage.audit import AuditEntry
from storage.jobs import Job


class UploadTooLarge(Exception):
    """The chat service refused the file for its size (Discord: HTTP 413, code 40005)."""


class PostFailed(Exception):
    """A post failed for a reason worth retrying later (rate limit, outage, permissions)."""


@dataclass(frozen=True)
class Shrunk:
    """The posted file is a re-encode made to fit: the original is ``size`` bytes at ``url``."""

    url: str
    size: int
    limit: int


@dataclass(frozen=True)
class StatusView:
    job: Job
    queue_position: int | None = None  # 1-based among queued jobs, when queued


@dataclass(frozen=True)
class AdminNotice:
    """Something a server's admins must hear (a budget threshold, a provider problem).

    ``rule`` is a catalog code and ``params`` its numbers, like an error's;
    ``channel_id`` is the server's chosen notice channel, if it picked one.
    """

    guild_id: int
    rule: str
    params: Mapping[str, object] = field(default_factory=dict)
    channel_id: int | None = None


class AdminNotifier(Protocol):
    async def admin_notice(self, notice: AdminNotice) -> None:
        """Tell the server's admins (their notice channel, else the server's own); never raises."""
        ...


class AuditNotifier(Protocol):
    async def log_event(self, channel_id: int, entry: AuditEntry) -> None:
        """Mirror an audit row to the server's log channel (best effort: never raises)."""
        ...


class Notifier(AdminNotifier, AuditNotifier, Protocol):
    async def show_status(self, view: StatusView) -> None:
        """Edit the job's public status message (best effort: never raises)."""
        ...

    async def post_video(
        self, job: Job, video: Path, size: int, *, shrunk: Shrunk | None = None
    ) -> int:
        """Post the MP4 as an attachment; return the message id. Raises UploadTooLarge.

        ``shrunk``: it was compressed to fit; say so and link the original.
        """
        ...

    async def post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        """Post a link to the video, saying why it is not attached and that it expires.

        ``size`` and ``limit`` (bytes), when known, are stated; the post offers a fresh link.
        """
        ...

    async def find_delivery(self, job: Job) -> int | None:
        """Look for a delivery posted before a crash (so a retry never posts twice)."""
        ...

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        """The server's own upload limit in bytes, if known."""
        ...
