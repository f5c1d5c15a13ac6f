"""What the job service tells the outside world, as an interface the front end implements.

``hailuo/`` never imports discord: the Discord layer (``cogs/notifier.py``)
implements ``Notifier``; the CLI and the tests implement it too. Texts are
rendered by the implementer from the catalog, keyed by the job's state and
failure rule, so the core never holds member-facing words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hailuo.model.job import Job
from storage.audit import AuditEntry


class UploadTooLarge(Exception):
    """The chat service refused the file for its size (Discord: HTTP 413, code 40005)."""


class PostFailed(Exception):
    """A post failed for a reason worth retrying later (rate limit, outage, network).

    ``retry_after`` is the wait the chat service asked for, when it said one.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ChannelLost(PostFailed):
    """The job's channel can take no post, for good: it is gone or the bot lost access.

    Discord: 10003 Unknown Channel, 50001 Missing Access, 50013 Missing Permissions.
    Retrying cannot help; the member is reached by a direct message instead.
    ``permission_only``: the channel is there and only a permission is missing
    (Attach Files, perhaps), so a plain link may still go up where a file may not.
    """

    def __init__(self, reason: str, *, permission_only: bool = False) -> None:
        super().__init__(reason)
        self.permission_only = permission_only


class DirectMessagesClosed(PostFailed):
    """The member takes no direct message from the bot (Discord 50007), or is unknown."""


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
    queue_eta: float | None = None  # seconds until it is expected to be sent, when queued
    done_at: float | None = None  # when the video is expected to be ready (epoch seconds)
    #: Awaited by the notifier once the card shows this view (its edit went out, not merely
    #: queued): only then is what the card shows remembered (``jobs.cards``), so an edit
    #: dropped on its way (a stop, a refusal) is made again after a restart.
    shown: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class AdminNotice:
    """Something a server's admins must hear (a budget threshold, a provider problem).

    ``rule`` is a catalog code and ``params`` its numbers, like an error's;
    ``channel_id`` is the server's chosen notice channel, if it picked one, and
    ``log_channel_id`` its log channel, where the notice goes failing that. With
    neither it goes to the operator's log only: never to a public channel, which
    members read.
    """

    guild_id: int
    rule: str
    params: Mapping[str, object] = field(default_factory=dict)
    channel_id: int | None = None
    log_channel_id: int | None = None


class AdminNotifier(Protocol):
    async def admin_notice(self, notice: AdminNotice) -> None:
        """Tell the server's admins (their notice channel, else their log channel); never raises."""
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
        """Post the MP4 as an attachment; return the message id.

        ``shrunk``: it was compressed to fit; say so and link the original.
        Raises UploadTooLarge, ChannelLost (for good), or PostFailed (retry later).
        """
        ...

    async def post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        """Post a link to the video, saying why it is not attached and that it expires.

        ``size`` and ``limit`` (bytes), when known, are stated; the post offers a fresh link.
        Raises ChannelLost (for good) or PostFailed (retry later).
        """
        ...

    async def find_delivery(self, job: Job) -> int | None:
        """Look for a delivery posted before a crash (so a retry never posts twice).

        Searches the whole window since the job's card (and the member's direct
        messages when the channel is gone). Raises PostFailed when the look-up
        itself failed (no Read Message History, an outage): the caller then posts
        with the job's nonce, which Discord deduplicates for a few minutes.
        """
        ...

    async def dm_video(self, job: Job, video: Path, size: int) -> int:
        """Send the MP4 to the member directly (the channel is lost); the message id.

        Raises UploadTooLarge, DirectMessagesClosed, or PostFailed to retry later.
        """
        ...

    async def dm_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        """Send the link to the member directly; raises DirectMessagesClosed or PostFailed."""
        ...

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        """The server's own upload limit in bytes, if known."""
        ...

    async def tell_member(self, job: Job, rule: str, params: Mapping[str, object]) -> bool:
        """Tell the job's member privately (a direct message) the catalog text ``rule``.

        For what concerns the member alone (a strike against them), never a public post.
        Best effort: never raises; False when the member could not be reached.
        """
        ...
