"""Each provider's limiter and circuit breaker, shared by every process through storage.

``hailuo.jobs.resilience`` decides (AIMD under a fixed ceiling, closed / open /
half-open); this module makes its state one for all the processes that share a
database, so N processes never send N times a provider's allowed rate and all skip
an open circuit. The state is a row per provider (``storage.limits``), changed only
by compare-and-set:

- ``pull`` (each tick) reads every row into the local objects, so the synchronous
  admission in line order, the queue's waiting times and the circuit checks see what
  every process sent;
- ``reserve`` (right before a submission) takes the slot in the stored state: it
  re-reads it, checks the circuit and the limiter there, takes the slot and writes it
  back only if nobody wrote meanwhile (else it reads again). A slot taken locally by
  ``Resilience.admit`` is a forecast; this is the one that counts;
- ``record`` feeds a submission's outcome to the stored state the same way.

Within one process the changes of a provider's row take turns (a lock per provider):
compare-and-set is for other processes. Without the turns, the worker's concurrent
submissions read the same version and all but one lose each round, so under a burst
some gave up after ``ATTEMPTS`` rounds: a slot refused while free, an outcome (a
failure the breaker should count) never shared.

Without a store (a core built for a unit test) the local objects are the whole truth.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable
from typing import Any

from hailuo.clock import Clock
from hailuo.jobs.resilience import ProviderHealth, Resilience
from hailuo.model.errors import ProviderError
from storage.port import ProviderLimitStore

log = logging.getLogger(__name__)

#: Compare-and-set rounds before giving up on one change (each lost round means another
#: process changed the state just then: a few are plenty).
ATTEMPTS = 16


class SharedLimits:
    def __init__(
        self, resilience: Resilience, store: ProviderLimitStore | None, clock: Clock
    ) -> None:
        self.resilience = resilience
        self.store = store
        self.clock = clock
        self._turns: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )

    async def pull(self) -> None:
        """Take over every provider's stored state (writing the first one where none is)."""
        if self.store is None:
            return
        stored = await self.store.all()
        for name in self.resilience.names():
            row = stored.get(name)
            if row is None:
                row = await self.store.create(
                    name, encode(self.resilience.health(name)), self.clock()
                )
            decode(self.resilience.health(name), row.state)

    async def reserve(self, name: str) -> bool:
        """Take a submission slot of ``name`` in the shared state; False: none is free now."""
        if self.store is None:
            return True  # ``Resilience.admit`` took it, and no one else counts
        async with self._turns[name]:
            return await self._reserve(self.store, name)

    async def _reserve(self, store: ProviderLimitStore, name: str) -> bool:
        for _ in range(ATTEMPTS):
            version = await self._read(name)
            health = self.resilience.health(name)
            if not health.breaker.available() or health.limiter.wait() > 0:
                return False  # another process took the slot, or the circuit opened
            health.breaker.begin()
            health.limiter.acquire()
            if await store.save(name, version, encode(health), self.clock()):
                return True
        log.warning("submission slot of %s contended %d times; waiting a tick", name, ATTEMPTS)
        return False

    async def record(self, name: str, error: ProviderError | None) -> None:
        """Feed one submission's outcome (None: accepted) to the shared state."""
        await self._change(name, lambda: self.resilience.record_submit(name, error), "outcome")

    async def unsent(self, name: str) -> None:
        """Give back the slot ``reserve`` took for a submission that never went out."""
        await self._change(name, lambda: self.resilience.unsent(name), "unused slot")

    async def _change(self, name: str, change: Callable[[], None], what: str) -> None:
        """``change`` the provider's state, and share it (again on a newer version)."""
        if self.store is None:
            change()
            return
        async with self._turns[name]:
            for _ in range(ATTEMPTS):
                version = await self._read(name)
                change()
                state = encode(self.resilience.health(name))
                if await self.store.save(name, version, state, self.clock()):
                    return
            log.warning("%s at %s not shared after %d tries (contended)", what, name, ATTEMPTS)

    async def _read(self, name: str) -> int:
        assert self.store is not None
        row = await self.store.get(name)
        if row is None:
            row = await self.store.create(name, encode(self.resilience.health(name)), self.clock())
        decode(self.resilience.health(name), row.state)
        return row.version


def encode(health: ProviderHealth) -> str:
    state: dict[str, Any] = {
        "limiter": health.limiter.snapshot(),
        "breaker": health.breaker.snapshot(),
    }
    return json.dumps(state, sort_keys=True)


def decode(health: ProviderHealth, text: str) -> None:
    state = json.loads(text)
    health.limiter.restore(state["limiter"])
    health.breaker.restore(state["breaker"])
