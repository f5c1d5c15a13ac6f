"""Small writes grouped into one transaction each: one disk sync for many.

The database syncs every commit to disk (``synchronous=FULL``), about a millisecond
or more each on this kind of machine, so 10,000 polls written one by one after a
restart cost seconds. A ``Grouped`` writer collects the writes that arrive while the
previous group commits and writes them together; each caller still learns whether its
own write was made (a guarded write may find its row moved on). Used for the polls
that find their task still running and for what each card shows
(``hailuo.jobs.following``, ``hailuo.jobs.cards``): writes whose loss in a crash
costs a repeated query or a repeated card edit, never money.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Grouped(Generic[T]):
    """Calls ``write`` with the items that arrived since its last call, in order, at most
    ``most`` at a time (the callers of one group all go on in one turn of the event
    loop: a bounded group keeps that turn short).

    ``write`` returns the keys (``key(item)``) of the items it wrote."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[set[int]]],
        key: Callable[[T], Hashable],
        *,
        most: int = 64,
    ) -> None:
        self.write = write
        self.key = key
        self.most = most
        self._pending: list[tuple[T, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Future[None] | None = None

    async def __call__(self, item: T) -> bool:
        """Write ``item`` with the group it joins; False when it was not written."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the writes arriving in this turn of the loop join the group
        while self._pending:
            group, self._pending = self._pending[: self.most], self._pending[self.most :]
            try:
                written = await self.write([item for item, _ in group])
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    # Nobody flushes after this one: every caller still waiting learns it.
                    group, self._pending = group + self._pending, []
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for item, future in group:
                if not future.done():
                    future.set_result(self.key(item) in written)
