"""The steps the worker's loop started and has not seen end, and when it may take more.

``Worker.tick`` takes a slice of due steps and waits for all of them: a test steps
through the job's life one slice at a time. The forever loop (``Worker.run``) does not
wait for a slice's slowest step before it reads the next one: while the steps of a
full slice run, the next slice is claimed as soon as the steps in flight fall to
``room`` (the rows still running are left out of the claim), so the status slots never
sit idle behind the read, and a read overlaps the queries of the slice before it.
``InFlight`` keeps those steps: their count (``room``), and at a stop all of them,
waited for (``settle``) or cancelled with the loop (``cancel``). When the last one ends
it says so (``on_empty``): the loop wakes and releases their leases at once, as a
``tick`` does after its slice, instead of at its next due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class InFlight:
    """Futures of steps under way; ``room()`` returns once at most ``room`` are left."""

    def __init__(self, room: int, on_empty: Callable[[], None] | None = None) -> None:
        self.room_at = room
        #: Called when the last step under way ended (the worker wakes to release leases).
        self.on_empty = on_empty
        self._steps: set[asyncio.Future[None]] = set()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, step: asyncio.Future[None]) -> None:
        """Follow one step more, from when it starts (a round hands each one over)."""
        if step.done():
            return
        self._steps.add(step)
        step.add_done_callback(self._ended)
        if len(self._steps) > self.room_at:
            self._room.clear()

    def _ended(self, step: asyncio.Future[None]) -> None:
        self._steps.discard(step)
        if len(self._steps) <= self.room_at:
            self._room.set()
        if not self._steps and self.on_empty is not None:
            self.on_empty()

    async def room(self) -> None:
        """Wait until at most ``room`` steps are left under way."""
        await self._room.wait()

    async def settle(self) -> None:
        """Wait for every step under way (each one logs its own failure)."""
        while self._steps:
            await asyncio.gather(*list(self._steps), return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel every step under way and wait until they ended (a shielded write goes on; a
        submit the provider has waits for its answer, its job's lease held)."""
        steps = list(self._steps)
        for step in steps:
            step.cancel()
        if steps:
            await asyncio.wait(steps)
