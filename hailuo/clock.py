"""Injected time, so tests control it and nothing reads the wall clock directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

#: Seconds since the epoch, as a float. ``time.time`` in production.
Clock = Callable[[], float]

system_clock: Clock = time.time


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
