"""What the job service tells the outside world, as an interface the front end implements.

``hailuo/`` never imports discord: the Discord layer (``cogs/notifier.py``)
implements ``Notifier``; the CLI and the tests implement it too. Texts are
rendered by the implementer from the catalog, keyed by the job's state and
failure rule, so the core never holds member-facing words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from storage.jobs import Job


class UploadTooLarge(Exception):
    """The chat service refused the file for its size (Discord: HTTP 413, code 40005)."""


class PostFailed(Exception):
    """A post failed for a reason worth retrying later (rate limit, outage, permissions)."""


@dataclass(frozen=True)
class StatusView:
    job: Job
    queue_position: int | None = None  # 1-based among queued jobs, when queued


class Notifier(Protocol):
    async def show_status(self, view: StatusView) -> None:
        """Edit the job's public status message (best effort: never raises)."""
        ...

    async def post_video(self, job: Job, video: Path, size: int) -> int:
        """Post the MP4 as an attachment; return the message id. Raises UploadTooLarge."""
        ...

    async def post_link(self, job: Job, url: str, reason: str) -> int:
        """Post a link to the video, saying why it is not attached and that it expires."""
        ...

    async def find_delivery(self, job: Job) -> int | None:
        """Look for a delivery posted before a crash (so a retry never posts twice)."""
        ...

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        """The server's own upload limit in bytes, if known."""
        ...
