"""Steps that run to their end even when the task awaiting them is cancelled.

Both engines share a connection between units of work (SQLite's one, PostgreSQL's pooled
ones). A ``BEGIN``, a statement, a rollback or a ``COMMIT`` cut off by a cancellation (a
stop, a timeout) would leave the connection half way, or, already sent to aiosqlite's
thread, run later in whatever transaction is open by then. So such a step runs to its end
and only then does the cancellation go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def finish(step: Callable[[], Awaitable[T]]) -> T:
    """Run ``step`` to its end even if the caller is cancelled meanwhile, then pass the
    cancellation on (the step's own outcome is then retrieved and dropped)."""
    task = asyncio.ensure_future(step())
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what goes on
        raise asyncio.CancelledError
    return task.result()


def cancelling() -> bool:
    """Whether the running task is being cancelled (a stop, a timeout): what it awaited may
    have ended with a cancellation of its own, and this one must still go on."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def acquire(lock: asyncio.Lock) -> bool:
    """Take ``lock`` even through a cancellation (what it guards must still end); whether a
    cancellation came meanwhile, for the caller to pass on once done."""
    cancelled = False
    while True:
        try:
            await lock.acquire()
            return cancelled
        except asyncio.CancelledError:
            cancelled = True
