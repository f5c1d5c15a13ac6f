"""Small test doubles of our OWN interfaces (never of discord.py): a clock and a notifier."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hailuo.jobs.notify import AdminNotice, PostFailed, Shrunk, StatusView, UploadTooLarge
from hailuo.model.job import Job
from storage.audit import AuditEntry


class FakeClock:
    """A clock the test moves by hand; starts at a fixed, realistic moment."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class OffsetClock:
    """Wall time plus what the test skips ahead by hand (for code that also needs real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Posted:
    job_id: int
    kind: str  # "attachment" or "link"
    data: bytes | None = None
    url: str | None = None
    reason: str | None = None
    direct: bool = False  # sent to the member's DMs


@dataclass
class RecordingNotifier:
    """Implements hailuo.jobs.notify.Notifier the way a CLI would: it keeps what it is told."""

    upload_limit: int | None = None
    refuse_upload: bool = False
    fail_posts: int = 0
    statuses: list[StatusView] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    notices: list[AdminNotice] = field(default_factory=list)
    logged: list[tuple[int, AuditEntry]] = field(default_factory=list)  # (channel, row)
    told: list[tuple[int, str, dict[str, object]]] = field(default_factory=list)  # private
    _next_id: int = 1000

    async def show_status(self, view: StatusView) -> None:
        self.statuses.append(view)
        if view.shown is not None:
            await view.shown()  # shown at once here

    async def post_video(
        self, job: Job, video: Path, size: int, *, shrunk: Shrunk | None = None
    ) -> int:
        self._maybe_fail()
        if self.refuse_upload:
            raise UploadTooLarge("413")
        self.posted.append(Posted(job.id, "attachment", data=video.read_bytes()))
        return self._id()

    async def post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        self._maybe_fail()
        self.posted.append(Posted(job.id, "link", url=url, reason=reason))
        return self._id()

    async def find_delivery(self, job: Job) -> int | None:
        return None

    async def dm_video(self, job: Job, video: Path, size: int) -> int:
        self._maybe_fail()
        self.posted.append(Posted(job.id, "attachment", data=video.read_bytes(), direct=True))
        return self._id()

    async def dm_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        self._maybe_fail()
        self.posted.append(Posted(job.id, "link", url=url, reason=reason, direct=True))
        return self._id()

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        return self.upload_limit

    async def tell_member(self, job: Job, rule: str, params: Mapping[str, object]) -> bool:
        self.told.append((job.user_id, rule, dict(params)))
        return True

    async def admin_notice(self, notice: AdminNotice) -> None:
        self.notices.append(notice)

    async def log_event(self, channel_id: int, entry: AuditEntry) -> None:
        self.logged.append((channel_id, entry))

    def _maybe_fail(self) -> None:
        if self.fail_posts:
            self.fail_posts -= 1
            raise PostFailed("simulated outage")

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def states(self, job_id: int) -> list[str]:
        return [v.job.status.value for v in self.statuses if v.job.id == job_id]
