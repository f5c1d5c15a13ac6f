"""Keeping the disk bounded: the image sweep and the free-space check of ``/healthz``.

A job's images are kept while it may still be re-rolled: until it has been
terminal for ``HAILUO_IMAGE_RETENTION_HOURS``. After that its references go,
then every image nobody references any more (a re-roll shares its parent's
image by content hash, so a young re-roll keeps it alive), and SQLite gives
the freed pages back (incremental vacuum). The sweep runs as one of the
worker's sweeps, at most once per ``every`` seconds of the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from hailuo.clock import Clock
from hailuo.media.downloads import free_bytes
from storage.port import JobStore

log = logging.getLogger(__name__)

#: How often the image sweep looks for old images, seconds.
SWEEP_EVERY = 3600.0


class ImageSweeper:
    """Deletes the images of jobs past the re-roll window (a worker sweep)."""

    def __init__(
        self,
        jobs: JobStore,
        clock: Clock,
        *,
        retention: float,
        every: float = SWEEP_EVERY,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.retention = retention
        self.every = every
        self._last: float | None = None

    async def sweep(self) -> None:
        """Delete what is due, at most once per ``every`` (the worker calls it every tick)."""
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return
        self._last = now
        freed = await self.jobs.sweep_images(before=now - self.retention)
        if freed:
            log.info("deleted %d image(s) past the re-roll window", freed)


async def disk_has_room(
    directory: Path, min_free: int, probe: Callable[[Path], int] = free_bytes
) -> bool:
    """Whether the data directory keeps at least ``min_free`` bytes free (``/healthz``)."""
    try:
        free = await asyncio.to_thread(probe, directory)
    except OSError:
        log.exception("free-space probe failed for the data directory")
        return False
    if free < min_free:
        log.warning(
            "the data directory has %d MiB free, under the %d MiB kept", free >> 20, min_free >> 20
        )
        return False
    return True
