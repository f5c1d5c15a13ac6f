"""``Grouped``: the writes arriving while one group is written go together in the next,
each caller learns whether its own was written, and a failure reaches only its group."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from hailuo.jobs.grouped import Grouped

#: A test's safety net only: every wait below ends on an event long before this.
PATIENCE = 10.0


class Writer:
    """Records each group; a group waits for ``go`` while ``hold`` is clear; the items in
    ``refuse`` are not written (a guarded write whose row moved on)."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.writing = asyncio.Event()
        self.refuse: set[int] = set()
        self.fail_with: BaseException | None = None

    async def __call__(self, items: Sequence[int]) -> set[int]:
        self.groups.append(list(items))
        self.writing.set()
        await self.hold.wait()
        if self.fail_with is not None:
            exc, self.fail_with = self.fail_with, None
            raise exc
        return {item for item in items if item not in self.refuse}


async def test_grouped_writes_arriving_together_share_one_write() -> None:
    writer = Writer()
    grouped = Grouped(writer, key=lambda item: item)
    assert await asyncio.gather(*(grouped(n) for n in range(5))) == [True] * 5
    assert writer.groups == [[0, 1, 2, 3, 4]]


async def test_grouped_writes_arriving_during_a_write_go_in_the_next_group() -> None:
    writer = Writer()
    writer.hold.clear()
    grouped = Grouped(writer, key=lambda item: item)
    first = asyncio.ensure_future(grouped(1))
    await asyncio.wait_for(writer.writing.wait(), PATIENCE)
    later = [asyncio.ensure_future(grouped(n)) for n in (2, 3)]
    writer.hold.set()
    assert await asyncio.wait_for(asyncio.gather(first, *later), PATIENCE) == [True] * 3
    assert writer.groups == [[1], [2, 3]]


async def test_grouped_groups_are_bounded_and_each_caller_learns_its_own_outcome() -> None:
    writer = Writer()
    writer.refuse = {4}
    grouped = Grouped(writer, key=lambda item: item, most=3)
    results = await asyncio.gather(*(grouped(n) for n in range(7)))
    assert writer.groups == [[0, 1, 2], [3, 4, 5], [6]]
    assert results == [True, True, True, True, False, True, True]


async def test_grouped_a_failed_write_fails_its_group_only() -> None:
    writer = Writer()
    writer.fail_with = OSError("disk")
    grouped = Grouped(writer, key=lambda item: item, most=2)
    results = await asyncio.gather(*(grouped(n) for n in range(4)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [OSError, OSError]
    assert results[2:] == [True, True]


async def test_grouped_cancelled_flush_fails_every_caller_still_waiting() -> None:
    """A flush cancelled mid-write (a stop) leaves no caller waiting for a write that
    nobody will make: the group being written and the ones queued behind it all learn."""
    writer = Writer()
    writer.hold.clear()
    grouped = Grouped(writer, key=lambda item: item, most=1)
    callers = [asyncio.ensure_future(grouped(n)) for n in range(3)]
    await asyncio.wait_for(writer.writing.wait(), PATIENCE)
    flushing = grouped._flushing
    assert flushing is not None
    flushing.cancel()
    done, pending = await asyncio.wait(callers, timeout=PATIENCE)
    assert not pending
    for caller in done:
        with pytest.raises(asyncio.CancelledError):
            caller.result()
    assert writer.groups == [[0]]
