"""The per-channel outbox (cogs/outbox.py): order, priority, coalescing, 429s waited out.

The sends here are our own coroutines standing in for discord.py calls, with gates the test
opens, so every ordering is decided by the test and nothing sleeps; the outbox's sleep is
injected and records how long it was asked to wait. The outbox against the real client and
the Discord simulator is tested in ``test_busy_channel.py``.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import discord
import pytest

from cogs.outbox import Outbox


class Waits:
    """The outbox's injected sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def too_many(retry_after: str) -> discord.HTTPException:
    """What discord.py raises when it gives up on 429s (or takes one for Cloudflare's)."""
    response = SimpleNamespace(
        status=429, reason="Too Many Requests", headers={"Retry-After": retry_after}
    )
    return discord.HTTPException(response, {"message": "You are being rate limited."})  # type: ignore[arg-type]


async def test_outbox_serialises_one_channel_and_keeps_order() -> None:
    outbox = Outbox(sleep=Waits())
    gate = asyncio.Event()
    started = asyncio.Event()
    running: list[int] = []
    peak = 0
    sent: list[int] = []

    def sender(n: int):
        async def send() -> int:
            nonlocal peak
            started.set()
            running.append(n)
            peak = max(peak, len(running))
            await gate.wait()
            running.remove(n)
            sent.append(n)
            return n

        return send

    posts = [asyncio.ensure_future(outbox.post(7, sender(n))) for n in range(5)]
    await started.wait()
    assert outbox.pending(7) == (4, 0)  # one is out, four wait their turn
    gate.set()
    assert await asyncio.gather(*posts) == [0, 1, 2, 3, 4]
    assert sent == [0, 1, 2, 3, 4]
    assert peak == 1


async def test_outbox_channels_do_not_wait_for_each_other() -> None:
    outbox = Outbox(sleep=Waits())
    held = asyncio.Event()

    async def stuck() -> str:
        await held.wait()
        return "late"

    async def quick() -> str:
        return "now"

    slow = asyncio.ensure_future(outbox.post(1, stuck))
    assert await outbox.post(2, quick) == "now"
    assert not slow.done()
    held.set()
    assert await slow == "late"


async def test_outbox_posts_go_before_card_edits_and_edits_coalesce() -> None:
    outbox = Outbox(sleep=Waits())
    gate = asyncio.Event()
    started = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        started.set()
        await gate.wait()
        order.append("post 0")

    def post(name: str):
        async def send() -> None:
            order.append(name)

        return send

    def edit(name: str):
        async def send() -> None:
            order.append(name)

        return send

    busy = asyncio.ensure_future(outbox.post(3, first))
    await started.wait()
    outbox.edit(3, 100, edit("card 100: queued"))
    outbox.edit(3, 200, edit("card 200: running"))
    outbox.edit(3, 100, edit("card 100: delivered"))  # supersedes the queued state
    later = [asyncio.ensure_future(outbox.post(3, post(f"post {n}"))) for n in (1, 2)]
    while outbox.pending(3) != (2, 2):  # both posts queued behind the busy one
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(busy, *later)
    await outbox.drained()
    assert order == [
        "post 0",
        "post 1",
        "post 2",
        "card 100: delivered",  # kept the older edit's place in line, with the newest state
        "card 200: running",
    ]
    assert outbox.stats.superseded == 1
    assert outbox.stats.edits == 2


async def test_outbox_waits_out_429s_and_never_fails_the_post() -> None:
    waits = Waits()
    outbox = Outbox(sleep=waits)
    answers: list[Exception | None] = [discord.RateLimited(4.5), too_many("2"), None]
    calls = 0

    async def send() -> str:
        nonlocal calls
        calls += 1
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "message"

    assert await outbox.post(9, send) == "message"
    assert calls == 3  # the same post, sent again after each wait
    assert waits.seconds == [4.5, 2.0]
    assert outbox.stats.rate_limited == 2


async def test_outbox_hands_other_errors_to_the_poster() -> None:
    outbox = Outbox(sleep=Waits())
    response = SimpleNamespace(status=403, reason="Forbidden")

    async def forbidden() -> None:
        raise discord.Forbidden(response, {"message": "Missing Access", "code": 50001})  # type: ignore[arg-type]

    with pytest.raises(discord.Forbidden):
        await outbox.post(5, forbidden)

    async def fine() -> str:
        return "next"

    assert await outbox.post(5, fine) == "next"  # the lane goes on


async def test_outbox_edit_failures_are_logged_not_raised_and_429_edits_retry() -> None:
    waits = Waits()
    outbox = Outbox(sleep=waits)
    tries: list[str] = []

    async def broken() -> None:
        tries.append("broken")
        raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "Unknown Message")  # type: ignore[arg-type]

    async def limited() -> None:
        tries.append("limited")
        if tries.count("limited") == 1:
            raise discord.RateLimited(1.5)

    outbox.edit(4, 1, broken)
    outbox.edit(4, 2, limited)
    await outbox.drained()
    assert tries == ["broken", "limited", "limited"]
    assert waits.seconds == [1.5]
    assert outbox.stats.edits == 1


async def test_outbox_drops_a_rate_limited_edit_once_a_newer_state_waits() -> None:
    waits = Waits()
    outbox = Outbox(sleep=waits)
    sent: list[str] = []

    async def old() -> None:
        sent.append("old")
        outbox.edit(6, 1, new)  # a newer state of the same card arrives meanwhile
        raise discord.RateLimited(1.0)

    async def new() -> None:
        sent.append("new")

    outbox.edit(6, 1, old)
    await outbox.drained()
    assert sent == ["old", "new"]  # the old state is not sent again after the wait


async def test_outbox_close_cancels_what_is_still_waiting() -> None:
    outbox = Outbox(sleep=Waits())
    started = asyncio.Event()
    never = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await never.wait()

    async def queued() -> str:
        return "never sent"

    first = asyncio.ensure_future(outbox.post(8, stuck))
    second = asyncio.ensure_future(outbox.post(8, queued))
    await started.wait()
    await outbox.close()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    await outbox.drained()  # nothing left running
