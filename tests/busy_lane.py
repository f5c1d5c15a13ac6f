"""A busy channel for the outbox tests: posts queued in the channel's lane before an action.

What the lane promises (``cogs/outbox.py``): a channel's requests go one at a time, in
the order they were queued, posts before card edits, and a 429 is waited out inside the
lane. So a message the bot sends *through* the lane after these posts were queued reaches
Discord after every one of them, and the simulator counts no 429; a message sent beside
the lane (straight through discord.py) overtakes them. The simulator records every call
in the order it answered them, which is what the tests compare.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from bot import App
from tests.discord_sim import DiscordSimulator
from tests.discord_sim.models import RecordedCall

#: Enough posts to fill several of the simulator's windows (5 creates per window).
BUSY_POSTS = 15


@dataclass
class BusyLane:
    sim: DiscordSimulator
    channel_id: int
    tasks: list[asyncio.Task[object]]
    label: str

    async def done(self) -> None:
        await asyncio.gather(*self.tasks)

    def last_busy_index(self) -> int:
        """Where the last of the busy posts is in the simulator's call log."""
        marks = {f"{self.label} {i}" for i in range(len(self.tasks))}
        indices = [
            i
            for i, call in enumerate(self.sim.calls)
            if call.ok
            and call.method == "POST"
            and call.path == f"/channels/{self.channel_id}/messages"
            and str(body(call).get("content")) in marks
        ]
        assert len(indices) == len(self.tasks), indices
        return max(indices)

    def index_of(self, wanted: Callable[[RecordedCall], bool]) -> int:
        """The first successful call that ``wanted`` picks."""
        return next(i for i, call in enumerate(self.sim.calls) if call.ok and wanted(call))


def busy(
    app: App, sim: DiscordSimulator, channel_id: int, label: str = "busy", posts: int = BUSY_POSTS
) -> BusyLane:
    """Queue ``posts`` messages ("<label> <n>") in ``channel_id``'s lane of the outbox, now."""
    channel = app.bot.get_partial_messageable(channel_id)
    tasks: list[asyncio.Task[object]] = [
        asyncio.create_task(
            app.bot.outbox.post(channel_id, lambda i=i: channel.send(f"{label} {i}"))
        )
        for i in range(posts)
    ]
    return BusyLane(sim, channel_id, tasks, label)


def components_name(call: RecordedCall, custom_id: str) -> bool:
    """The call's body carries a component with ``custom_id``."""
    return custom_id in str(body(call).get("components"))


def body(call: RecordedCall) -> dict[str, object]:
    """The call's JSON object (a few routes take a list, or nothing)."""
    return call.json if isinstance(call.json, dict) else {}
