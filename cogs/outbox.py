"""One outbox per channel: everything the bot creates or edits in a channel, in one queue.

Why a queue of our own when discord.py already reads the bucket headers: its
``Ratelimit`` is right for requests that take turns, but not for many at once
on one bucket. Tried against the Discord simulator (5 per 5 s per channel,
``tests/discord_sim/ratelimits.py``) with creates and edits counting in one
window under one hash: 20 posts and 20 card edits sent concurrently into one
channel drew 32 answers 429, because the waiters of one ``Ratelimit`` object
keep going after discord.py swaps in another one for the same bucket hash,
and a 429's retry does not queue again. Sent one at a time per channel, the
same 40 drew none: each answer's ``X-RateLimit-Remaining`` and
``Reset-After`` are then exact, and when a request takes a bucket's last
token discord.py waits out ``Reset-After`` before the next request leaves.
(With edits counted apart under the same hash, as Discord reports them and
the simulator's default, discord.py folds both into one ``Ratelimit`` and
stays under the limit, only slower.)

So each channel gets one lane, and the lane serialises:

- posts (deliveries, links, notices, audit rows) go first, in order, each
  awaited by its caller, which gets the message back;
- card edits go when no post is waiting, and they coalesce: an edit of a
  message that already has one waiting replaces it (the latest state of a
  card wins; the superseded one is never sent);
- a 429 (``discord.RateLimited``, or discord.py giving up on 429s) is never
  an error: the lane waits ``retry_after`` and sends the same request again
  (a pause over ``LONG_PAUSE`` is handed back to the caller instead, whose own
  schedule brings the post back; a card edit is then dropped for a newer one).
  Only other answers reach the caller (and the caller decides what they mean).

Lanes live only while they have work. ``drained()`` lets shutdown wait for
the last card edits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import discord

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

#: A 429 without a usable ``retry_after`` is waited out this long (then doubled, up to the cap).
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0
#: A rate limit longer than this is not slept through in the lane: the caller is told
#: (a delivery then comes back on its own schedule, on its budget of time) and the
#: lane goes on, so one long block never holds every job of the channel in memory.
LONG_PAUSE = 10.0


def retry_after(exc: Exception) -> float | None:
    """Seconds a rate-limit answer asks us to wait, or None when ``exc`` is not one."""
    if isinstance(exc, discord.RateLimited):
        return float(exc.retry_after)
    if isinstance(exc, discord.HTTPException) and exc.status == 429:
        headers = getattr(exc.response, "headers", None) or {}
        for name in ("X-RateLimit-Reset-After", "Retry-After"):
            value = headers.get(name)
            if value is not None:
                try:
                    return float(value)
                except ValueError:
                    continue
        return DEFAULT_RETRY_AFTER
    return None


@dataclass
class _Post:
    send: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any]


@dataclass
class _Lane:
    posts: deque[_Post] = field(default_factory=deque)
    #: Waiting card edits by message id, oldest first; a newer edit replaces an older one.
    edits: OrderedDict[int, Callable[[], Awaitable[object]]] = field(default_factory=OrderedDict)
    task: asyncio.Task[None] | None = None

    def idle(self) -> bool:
        return not self.posts and not self.edits


@dataclass
class OutboxStats:
    """What the outboxes did, for logs and tests."""

    posts: int = 0
    edits: int = 0
    superseded: int = 0  # edits dropped because a newer state of the same message came
    rate_limited: int = 0  # 429s waited out


class Outbox:
    """The per-channel queues of one bot (build one, share it by every sender)."""

    def __init__(self, *, sleep: Sleep = asyncio.sleep) -> None:
        self._sleep = sleep
        self._lanes: dict[int, _Lane] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = OutboxStats()

    async def post(self, channel_id: int, send: Callable[[], Awaitable[T]]) -> T:
        """Create something in the channel, after the posts queued before it; its result.

        ``send`` is called once per attempt (a 429 calls it again, so it must build its
        request anew: a ``discord.File`` is opened inside it). Its exceptions other than
        rate limits are the caller's.
        """
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._lane(channel_id).posts.append(_Post(send, done))
        return await done

    def edit(self, channel_id: int, message_id: int, edit: Callable[[], Awaitable[object]]) -> None:
        """Queue an edit of a message (best effort, never raises); the latest one wins."""
        lane = self._lane(channel_id)
        if message_id in lane.edits:
            self.stats.superseded += 1
            # Keeps its place in the line: the card waited as long as it did.
        lane.edits[message_id] = edit

    def pending(self, channel_id: int) -> tuple[int, int]:
        """(posts, edits) waiting in one channel's lane."""
        lane = self._lanes.get(channel_id)
        return (len(lane.posts), len(lane.edits)) if lane is not None else (0, 0)

    async def drained(self) -> None:
        """Return once every lane has sent (or dropped) everything queued so far."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop every lane (at shutdown, after ``drained`` had its chance); waiting posts
        are cancelled, so their callers see a cancellation, never a false success."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _lane(self, channel_id: int) -> _Lane:
        lane = self._lanes.get(channel_id)
        if lane is None:
            lane = self._lanes[channel_id] = _Lane()
        if lane.task is None:
            self._idle.clear()
            lane.task = asyncio.create_task(
                self._run(channel_id, lane), name=f"outbox-{channel_id}"
            )
        return lane

    async def _run(self, channel_id: int, lane: _Lane) -> None:
        """Send the lane's work one request at a time until nothing is left."""
        try:
            while not lane.idle():
                if lane.posts:
                    post = lane.posts.popleft()
                    try:
                        await self._send_post(channel_id, post)
                    except asyncio.CancelledError:
                        post.done.cancel()  # its caller must not wait for ever
                        raise
                else:
                    message_id, edit = lane.edits.popitem(last=False)
                    await self._send_edit(channel_id, lane, message_id, edit)
        finally:
            lane.task = None
            # Cancelled with work left: the posts' callers are told, the edits dropped.
            for post in lane.posts:
                post.done.cancel()
            lane.posts.clear()
            lane.edits.clear()
            self._lanes.pop(channel_id, None)
            if not self._lanes:
                self._idle.set()

    async def _send_post(self, channel_id: int, post: _Post) -> None:
        waited = 0
        while not post.done.done():  # a caller that gave up is not posted for
            try:
                result = await post.send()
            except Exception as exc:
                pause = retry_after(exc)
                if pause is None or pause > LONG_PAUSE:
                    if not post.done.done():
                        post.done.set_exception(exc)
                    return
                waited += 1
                await self._rate_limited(channel_id, pause, waited)
                continue
            self.stats.posts += 1
            if not post.done.done():
                post.done.set_result(result)
            return

    async def _send_edit(
        self,
        channel_id: int,
        lane: _Lane,
        message_id: int,
        edit: Callable[[], Awaitable[object]],
    ) -> None:
        waited = 0
        while True:
            try:
                await edit()
            except Exception as exc:
                pause = retry_after(exc)
                if pause is None or pause > LONG_PAUSE:
                    # Best effort: a card that cannot be edited never blocks the job's life.
                    status = getattr(exc, "status", None)
                    code = getattr(exc, "code", None)
                    log.warning("card edit failed message=%d: %s %s", message_id, status, code)
                    return
                waited += 1
                await self._rate_limited(channel_id, pause, waited)
                if message_id in lane.edits:
                    return  # a newer state came meanwhile; it is sent instead
                continue
            self.stats.edits += 1
            return

    async def _rate_limited(self, channel_id: int, pause: float, times: int) -> None:
        self.stats.rate_limited += 1
        pause = min(MAX_RETRY_AFTER, max(pause, DEFAULT_RETRY_AFTER * (times - 1)))
        log.warning("channel %d rate limited; waiting %.2f s", channel_id, pause)
        await self._sleep(pause)
