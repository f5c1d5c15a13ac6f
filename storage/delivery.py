"""Where a job's result goes: each server's choice (channel or thread) and each member's
(mention, direct message, quiet), and a job's thread once its card has one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from storage.audit import AuditAction, append_audit

if TYPE_CHECKING:
    from storage.engine import Engine

RESULTS_IN = ("channel", "thread")
NOTIFY = ("mention", "dm", "quiet")

SELECT_RESULTS_IN = "SELECT results_in FROM guild_delivery WHERE guild_id = :guild"
SET_RESULTS_IN = """
INSERT INTO guild_delivery (guild_id, results_in, updated_by, updated_at)
VALUES (:guild, :value, :actor, :now)
ON CONFLICT (guild_id) DO UPDATE SET
    results_in = excluded.results_in, updated_by = excluded.updated_by,
    updated_at = excluded.updated_at
"""
SELECT_NOTIFY = "SELECT notify FROM member_settings WHERE guild_id = :guild AND user_id = :user"
SET_NOTIFY = """
INSERT INTO member_settings (guild_id, user_id, notify, updated_at)
VALUES (:guild, :user, :value, :now)
ON CONFLICT (guild_id, user_id) DO UPDATE SET
    notify = excluded.notify, updated_at = excluded.updated_at
"""
SET_THREAD = (
    "UPDATE jobs SET thread_id = :thread, revision = revision + 1 "
    "WHERE id = :id AND thread_id IS NULL"
)


class DeliveryPrefsStore(Protocol):
    """The port's view (``storage.port.Storage.delivery``): a server's place for results
    ("channel" or "thread"), a member's way of being told ("mention", "dm", "quiet"),
    and a job's thread."""

    async def place(self, guild_id: int) -> str: ...

    async def set_place(
        self, guild_id: int, value: str, *, actor_id: int | None, now: float
    ) -> None: ...

    async def notify(self, guild_id: int, user_id: int) -> str: ...

    async def set_notify(self, guild_id: int, user_id: int, value: str, *, now: float) -> None: ...

    async def set_thread(self, job_id: int, thread_id: int) -> None: ...


class DeliveryPrefsRepository:
    def __init__(self, db: Engine) -> None:
        self.db = db

    async def place(self, guild_id: int) -> str:
        row = await self.db.fetch_one(SELECT_RESULTS_IN, {"guild": guild_id})
        return str(row["results_in"]) if row else RESULTS_IN[0]

    async def set_place(
        self, guild_id: int, value: str, *, actor_id: int | None, now: float
    ) -> None:
        if value not in RESULTS_IN:
            raise ValueError(f"not a place for results: {value!r}")
        async with self.db.transaction() as tx:
            params = {"guild": guild_id, "value": value, "actor": actor_id, "now": now}
            await tx.execute(SET_RESULTS_IN, params)
            await append_audit(
                tx,
                guild_id=guild_id,
                action=AuditAction.SETTING_CHANGED,
                actor_id=actor_id,
                now=now,
                details={"delivery": {"results_in": value}},
            )

    async def notify(self, guild_id: int, user_id: int) -> str:
        row = await self.db.fetch_one(SELECT_NOTIFY, {"guild": guild_id, "user": user_id})
        return str(row["notify"]) if row else NOTIFY[0]

    async def set_notify(self, guild_id: int, user_id: int, value: str, *, now: float) -> None:
        if value not in NOTIFY:
            raise ValueError(f"not a way to tell: {value!r}")
        async with self.db.transaction() as tx:
            params = {"guild": guild_id, "user": user_id, "value": value, "now": now}
            await tx.execute(SET_NOTIFY, params)

    async def set_thread(self, job_id: int, thread_id: int) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(SET_THREAD, {"id": job_id, "thread": thread_id})
