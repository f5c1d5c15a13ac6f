"""Edits of each job's public status message (its card), throttled for Discord's limits.

A change of state is shown at once; progress and queue-position changes at
most every ``edit_interval`` seconds per job; an older card only on a change
of state, since Discord caps edits of hour-old messages (error 30046).
"""

from __future__ import annotations

from hailuo.clock import Clock
from hailuo.notify import Notifier, StatusView
from hailuo.status import JobStatus
from hailuo.status_text import eta_minutes
from storage.jobs import Job

#: What a card shows that may change: state, queue position, waiting time (minutes), progress.
Seen = tuple[JobStatus, int | None, int | None, int | None]


class StatusCards:
    def __init__(
        self, notifier: Notifier, clock: Clock, *, edit_interval: float, old_card_age: float
    ) -> None:
        self.notifier = notifier
        self.clock = clock
        self.edit_interval = edit_interval
        self.old_card_age = old_card_age
        self._shown: dict[int, tuple[Seen, float]] = {}

    async def show(self, job: Job, position: int | None = None, eta: float | None = None) -> None:
        """Edit the status message on a change of state; progress, queue position and
        waiting time changes at most every ~10 s; nothing when nothing visible changed."""
        now = self.clock()
        seen: Seen = (job.status, position, eta_minutes(eta), job.progress)
        last = self._shown.get(job.id)
        if last is not None:
            if last[0] == seen:
                return
            if last[0][0] is job.status and now - last[1] < self.edit_interval:
                return
            if last[0][0] is job.status and now - job.created_at > self.old_card_age:
                return  # Discord caps edits of hour-old messages (a job held for approval)
        self._shown[job.id] = (seen, now)
        if job.status.terminal:
            self._shown.pop(job.id, None)
        view = StatusView(job=job, queue_position=position, queue_eta=eta)
        await self.notifier.show_status(view)
