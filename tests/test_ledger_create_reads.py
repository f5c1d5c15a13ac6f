"""``JobDesk.create`` reads only what its transaction must decide on (``-k ledger``).

What an admin or the member can change is still read from storage by the creating
transaction (the settings, the blocklist, the member's way of being told); what the
process wrote itself (the job) or already knows (the blocklist it screens against before
the lock) is not read again. Counted with SQLite's own statement trace on a real file.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import ModerationBlocked, UserInputError
from hailuo.model.spec import JobSpec, Mode
from hailuo.money.quotas import QuotaPolicy
from storage.blocklist import BlocklistKind, BlocklistRepository
from storage.db import Database
from storage.moderation import ModerationSettingsRepository

GUILD, CHANNEL = 1, 10
SPEC = JobSpec(mode=Mode.TEXT, prompt="a lake at dawn")


async def fixed_policy(guild_id: int) -> QuotaPolicy:
    return QuotaPolicy(daily_credits=100)


async def opened(tmp_path: Path) -> tuple[Database, JobDesk]:
    db = await Database.open(tmp_path / "reads.sqlite3")
    desk = JobDesk(db, clock=time.time, policy=fixed_policy, on_created=lambda: None)
    return db, desk


async def traced(db: Database, seen: Counter[str]) -> None:
    """Count each statement SQLite runs, by its first words, from now on."""

    def trace(sql: str) -> None:
        seen[" ".join(sql.split()[:4])] += 1

    await db._on_thread(lambda conn: conn.set_trace_callback(trace))


async def test_ledger_create_reads_no_job_back_no_notify_and_only_the_moderation_version(
    tmp_path: Path,
) -> None:
    db, desk = await opened(tmp_path)
    try:
        await desk.create(JobRequest(GUILD, CHANNEL, 7, SPEC))  # the server becomes known
        seen: Counter[str] = Counter()
        await traced(db, seen)
        job = await desk.create(JobRequest(GUILD, CHANNEL, 8, SPEC))
        await db._on_thread(lambda conn: conn.set_trace_callback(None))
        # Under the transaction, one small row says the known settings and blocklist are
        # still the stored ones (migration 012): neither is read again.
        assert seen["SELECT version FROM moderation_versions"] == 1
        assert seen["SELECT * FROM blocklist"] == 0
        assert seen["SELECT * FROM moderation_settings"] == 0
        assert seen["SELECT * FROM jobs"] == 0  # the job came back from its insert
        assert seen["SELECT notify FROM member_settings"] == 0  # read by the insert
        assert job == await desk.get(job.id)  # what came back is what is stored
    finally:
        await db.close()


async def test_ledger_create_takes_the_members_stored_notify_choice(tmp_path: Path) -> None:
    db, desk = await opened(tmp_path)
    try:
        plain = await desk.create(JobRequest(GUILD, CHANNEL, 7, SPEC))
        await desk.set_notify(GUILD, 7, "dm")
        told = await desk.create(JobRequest(GUILD, CHANNEL, 7, SPEC))
        other = await desk.create(JobRequest(GUILD, CHANNEL, 9, SPEC))
        assert (plain.notify, told.notify, other.notify) == ("mention", "dm", "mention")
        stored = await desk.get(told.id)
        assert stored is not None and stored.notify == "dm"
    finally:
        await db.close()


async def test_ledger_create_refuses_a_word_added_elsewhere_after_the_blocklist_was_known(
    tmp_path: Path,
) -> None:
    """The known blocklist screens first; the transaction's stored one settles it."""
    db, desk = await opened(tmp_path)
    try:
        await desk.create(JobRequest(GUILD, CHANNEL, 7, SPEC))  # known: an empty blocklist
        # Added around this desk (another process): its gate is not told to forget.
        await BlocklistRepository(db).add(GUILD, BlocklistKind.WORD, "lake", added_by=1, now=0)
        with pytest.raises(ModerationBlocked):
            await desk.create(JobRequest(GUILD, CHANNEL, 8, SPEC))
        assert await desk.recent(GUILD, 8, 5) == []
    finally:
        await db.close()


async def test_ledger_create_refuses_a_channel_closed_elsewhere_after_the_settings_were_known(
    tmp_path: Path,
) -> None:
    """Settings changed by another process move the server's moderation version: the next
    create reads them again under its transaction, and the closed channel refuses it."""
    db, desk = await opened(tmp_path)
    try:
        await desk.create(JobRequest(GUILD, CHANNEL, 7, SPEC))  # known: every channel open
        other = ModerationSettingsRepository(db)  # another process: this gate is not told
        await other.update(
            GUILD, {"allowed_channel_ids": frozenset({CHANNEL + 1})}, actor_id=1, now=0
        )
        with pytest.raises(UserInputError, match="channel_not_allowed"):
            await desk.create(JobRequest(GUILD, CHANNEL, 8, SPEC))
        assert await desk.recent(GUILD, 8, 5) == []
    finally:
        await db.close()
