"""Due times a provider's status budget can honour: a plan of the queries booked per slot.

The schedule (``jobs.schedule``) says when each task is worth asking; the status
budget (``jobs.budget``) says how many queries a second a provider takes. Alone, the
first can ask for more than the second allows: 10,000 tasks found running after a
restart, all submitted around the same time, fall due in the same instant at every
round, and the budget then serves them over seconds, each one later than the time
the job was given. That time is a promise nobody keeps, and lateness measured
against it says nothing about the worker.

So each planned query is booked in a slot of time (a quarter of a second, or the time
one query takes under a budget below four a second) per provider, at most the budget's
worth of queries a slot. A wish that finds its slot full goes to the next slot with
room, spread evenly through it, never earlier than wished: the plan moves a query only
when the budget could not have served it at the wished time anyway, so no member
waits longer for a video, and every planned time is one the budget can meet. While the
budget has room nothing moves. The plan is this process's (as the budget is); it
forgets slots once they are past.
"""

from __future__ import annotations

import math
from collections.abc import Callable

#: The shortest slot, seconds; a slow budget's slot holds one query (``1 / rate``).
SLOT = 0.25
#: Bookings between two clean-ups of the slots already past.
FORGET_EVERY = 512


class _Provider:
    """One provider's booked slots; ``skip`` points from a full slot to a later one."""

    def __init__(self, rate: float) -> None:
        self.width = max(SLOT, 1.0 / rate)
        self.room = max(1, math.floor(rate * self.width + 1e-9))
        self.booked: dict[int, int] = {}
        self.skip: dict[int, int] = {}
        self.bookings = 0

    def free(self, slot: int) -> int:
        """The first slot from ``slot`` with room (the pointers shortened on the way)."""
        path = []
        while slot in self.skip:
            path.append(slot)
            slot = self.skip[slot]
        for full in path:
            self.skip[full] = slot
        return slot

    def forget(self, now: float) -> None:
        past = math.floor(now / self.width)
        self.booked = {s: n for s, n in self.booked.items() if s >= past}
        self.skip = {s: t for s, t in self.skip.items() if s >= past}


class DuePlan:
    """The status queries planned per provider; ``rate(provider)`` is its budget a second
    (``math.inf``: no limit, nothing to plan)."""

    def __init__(self, rate: Callable[[str], float]) -> None:
        self.rate = rate
        self._providers: dict[str, _Provider] = {}

    def book(self, provider: str, wished: float, now: float) -> float:
        """Book one query of ``provider`` at ``wished`` or after; the planned time."""
        rate = self.rate(provider)
        if math.isinf(rate) or rate <= 0:
            return wished
        plan = self._providers.get(provider)
        if plan is None:
            plan = self._providers[provider] = _Provider(rate)
        plan.bookings += 1
        if plan.bookings % FORGET_EVERY == 0:
            plan.forget(now)
        first = math.floor(wished / plan.width)
        slot = plan.free(first)
        taken = plan.booked.get(slot, 0)
        plan.booked[slot] = taken + 1
        if taken + 1 >= plan.room:
            plan.skip[slot] = slot + 1
        if slot == first:
            return wished  # the budget has room then: as wished
        return (slot + taken / plan.room) * plan.width

    def booked(self, provider: str, start: float, end: float) -> int:
        """Queries of ``provider`` planned in the slots from ``start`` to before ``end``."""
        plan = self._providers.get(provider)
        if plan is None:
            return 0
        low, high = math.floor(start / plan.width), math.floor(end / plan.width)
        return sum(n for slot, n in plan.booked.items() if low <= slot < high)
