"""``Background``: a callback held for a job whose step runs is asked once the step ends,
once, and not at all when the step was cancelled (a stop starts nothing new)."""

from __future__ import annotations

import asyncio

import pytest

from hailuo.jobs.background import Background


class Polls:
    """Records each prompted query (job id, provider)."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, str]] = []

    async def __call__(self, job_id: int, provider: str) -> None:
        self.asked.append((job_id, provider))


async def test_background_a_held_callback_is_asked_once_when_the_step_ends() -> None:
    polls = Polls()
    background = Background(polls)
    background.hold(7, "minimax")
    background.step_ended(8)  # another job's step: nothing held for it
    await background.drain()
    assert polls.asked == []
    background.step_ended(7)
    background.step_ended(7)  # asked once: the hold is gone
    await background.drain()
    assert polls.asked == [(7, "minimax")]


async def test_background_a_cancelled_step_starts_no_query() -> None:
    polls = Polls()
    background = Background(polls)
    background.hold(7, "minimax")
    started = asyncio.Event()

    async def step() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            background.step_ended(7)

    task = asyncio.ensure_future(step())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await background.drain()
    assert polls.asked == []
