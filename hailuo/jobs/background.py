"""What the worker runs beside its steps: the queries a provider's callback prompts, and the
servers' account alerts. ``drain`` waits for them (the tests step through them with it).

A callback that comes while the job's own step runs is not dropped: that step's query may
have gone out before the task finished, so the task is asked again as soon as the step
ends (``step_ended``), not at the safety net's next query, which may be minutes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from storage.to_the_end import cancelling

Work = Coroutine[Any, Any, None]


class Background:
    """Futures of the work started beside the steps, and the callbacks held for a step."""

    def __init__(self, poll: Callable[[int, str], Work]) -> None:
        self._poll = poll  # one task's prompted query (``Worker._poll_now``)
        self._running: set[asyncio.Future[None]] = set()
        #: Jobs a callback prompted while their step ran, with the provider: asked after it.
        self._held: dict[int, str] = {}

    def spawn(self, work: Work) -> None:
        future = asyncio.ensure_future(work)
        self._running.add(future)
        future.add_done_callback(self._running.discard)

    def poll_soon(self, job_id: int, provider: str) -> None:
        self.spawn(self._poll(job_id, provider))

    def hold(self, job_id: int, provider: str) -> None:
        """A callback for a job whose step runs now: asked again once that step ends."""
        self._held[job_id] = provider

    def step_ended(self, job_id: int) -> None:
        """The job's step ended: a callback that came meanwhile is asked now (not when the
        step was cancelled: a stop starts nothing new)."""
        provider = self._held.pop(job_id, None)
        if provider is not None and not cancelling():
            self.poll_soon(job_id, provider)

    async def drain(self) -> None:
        """Wait for every piece of work started so far, and for what they start in turn."""
        while self._running:
            await asyncio.gather(*list(self._running))
