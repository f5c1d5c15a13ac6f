"""Each provider's shared submission limiter and circuit breaker state (migration 010).

The state is the core's (``hailuo.jobs.shared_limits``), kept as JSON with a version:
every change is a compare-and-set (``UPDATE … WHERE version = :version``), so two
processes that read the same state cannot both spend its last free slot: the second
one's write changes nothing and it reads again. Plain standard SQL on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.engine import Engine

SELECT_ALL = "SELECT provider, version, state FROM provider_limits"
SELECT_ONE = "SELECT provider, version, state FROM provider_limits WHERE provider = :provider"
INSERT = """
INSERT INTO provider_limits (provider, version, state, updated_at)
VALUES (:provider, 1, :state, :now)
ON CONFLICT (provider) DO NOTHING
"""
SAVE = """
UPDATE provider_limits SET version = version + 1, state = :state, updated_at = :now
WHERE provider = :provider AND version = :version
"""


@dataclass(frozen=True)
class SharedLimit:
    """One provider's stored state: the JSON text and the version it was read at."""

    provider: str
    version: int
    state: str


class ProviderLimitRepository:
    """Implements ``storage.port.ProviderLimitStore``."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    async def all(self) -> dict[str, SharedLimit]:
        rows = await self.db.fetch_all(SELECT_ALL)
        return {
            r["provider"]: SharedLimit(r["provider"], int(r["version"]), r["state"]) for r in rows
        }

    async def get(self, provider: str) -> SharedLimit | None:
        row = await self.db.fetch_one(SELECT_ONE, {"provider": provider})
        return SharedLimit(provider, int(row["version"]), row["state"]) if row else None

    async def create(self, provider: str, state: str, now: float) -> SharedLimit:
        """The provider's row, written with ``state`` unless another process wrote it first."""
        async with self.db.transaction() as tx:
            await tx.execute(INSERT, {"provider": provider, "state": state, "now": now})
            row = await tx.fetch_one(SELECT_ONE, {"provider": provider})
        assert row is not None
        return SharedLimit(provider, int(row["version"]), row["state"])

    async def save(self, provider: str, version: int, state: str, now: float) -> bool:
        """Replace the state read at ``version``; False when someone changed it since."""
        params = {"provider": provider, "version": version, "state": state, "now": now}
        async with self.db.transaction() as tx:
            return await tx.execute(SAVE, params) == 1
