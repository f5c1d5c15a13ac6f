"""Numbers that spare a read, on both engines.

A job's revision (migration 011): a transition that found the row at the revision the job
was read at hands back that job moved, without SQLite returning the row; one that finds the
row written meanwhile hands back the row as it now is. Either way, what comes back is what
a read of the row gives.

A server's moderation version (migration 012): every change of its settings or blocklist
moves it, whoever writes, so a create that finds it unchanged reads neither again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import storage
from hailuo.model.job import Job, NewJob
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage.blocklist import BlocklistKind
from storage.db import Database
from storage.jobs import StaleTransition
from tests.pg_server import BOTH_ENGINES

ENGINES = BOTH_ENGINES
CHARGED = (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.DELIVERED)


async def queued(db: Database, now: float = 1.0) -> Job:
    new = NewJob(
        guild_id=1, channel_id=2, user_id=3, spec=JobSpec(Mode.TEXT, "x"), cost=2, period="p"
    )
    async with db.transaction() as tx:
        return await db.jobs.add(tx, new, now)


async def stored(db: Database, job: Job) -> Job:
    row = await db.jobs.get(job.id)
    assert row is not None
    return row


async def test_every_transition_hands_back_the_row_as_stored_revision(db: Database) -> None:
    job = await queued(db)
    updates: list[dict[str, object]] = [
        {"provider": "minimax", "provider_meta": {"b": [1, 2], "a": {"n": 1.5}}},
        {"provider_task_id": "t-1", "submitted_at": 3.25, "next_poll_at": 10},
        {"progress": 100, "result_locator": "https://x/y.mp4", "next_delivery_at": 4.0},
        {"delivered_message_id": 77, "delivery_kind": "attachment", "delivery_bytes": 9},
    ]
    for n, (status, changes) in enumerate(zip(CHARGED, updates, strict=True), start=2):
        before = job.revision
        job = await db.jobs.transition(job, status, float(n), **changes)  # type: ignore[arg-type]
        assert job == await stored(db, job)
        assert job.revision == before + 1
    assert job.status is JobStatus.DELIVERED and job.finished_at == 5.0
    assert job.provider_meta == {"a": {"n": 1.5}, "b": [1, 2]}


async def test_a_refund_hands_back_the_row_as_stored_revision(db: Database) -> None:
    job = await queued(db)
    cancelled = await db.jobs.transition(job, JobStatus.CANCELLED, 2.0, reason="member")
    assert cancelled == await stored(db, cancelled)
    assert cancelled.lease_holder is None and cancelled.finished_at == 2.0


async def test_a_row_written_since_the_read_comes_back_as_it_now_is_revision(
    db: Database,
) -> None:
    """The card's message, its thread, what it last showed and the lease are written by
    others while a step holds the job: none of them is lost (a lost card id would post a
    second card)."""
    job = await queued(db)
    await db.jobs.set_status_message(job.id, 2, 555, 1.5)
    await db.jobs.set_card_seen(job.id, "queued#1")
    await db.delivery.set_thread(job.id, 888)
    assert await db.leases.claim(job.id, "vm-1", 1.6, 60.0) is not None
    moved = await db.jobs.transition(job, JobStatus.SUBMITTING, 2.0, provider="minimax")
    assert moved == await stored(db, moved)
    assert (moved.status_message_id, moved.card_seen, moved.thread_id) == (555, "queued#1", 888)
    assert moved.lease_holder == "vm-1"


async def test_a_write_that_forgets_the_revision_still_moves_it_revision(db: Database) -> None:
    """The bot's statements move it themselves; the trigger of migration 011 moves it for
    any other write (a test's, an owner's shell), so an older copy is never taken for it."""
    job = await queued(db)
    async with db.transaction() as tx:
        await tx.execute("UPDATE jobs SET status_message_id = 42 WHERE id = :id", {"id": job.id})
    assert (await stored(db, job)).revision == job.revision + 1
    moved = await db.jobs.transition(job, JobStatus.SUBMITTING, 2.0)
    assert moved.status_message_id == 42 and moved == await stored(db, moved)


async def test_a_stale_state_is_still_refused_revision(db: Database) -> None:
    job = await queued(db)
    await db.jobs.transition(job, JobStatus.SUBMITTING, 2.0)
    with pytest.raises(StaleTransition):
        await db.jobs.transition(job, JobStatus.CANCELLED, 3.0)
    entries = await db.fetch_all("SELECT kind FROM ledger WHERE job_id = :id", {"id": job.id})
    assert [row["kind"] for row in entries] == ["reserve"]  # no refund for the stale move


@pytest.mark.sqlite_only
def test_every_statement_that_writes_a_job_moves_its_revision() -> None:
    """Every ``UPDATE jobs`` in ``storage/`` moves the revision itself (the trigger is only
    the net for writes from elsewhere, and costs a second write)."""
    folder = Path(storage.__file__).parent
    found = 0
    for path in sorted(folder.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"UPDATE jobs SET(.*?)(WHERE|FROM)", text, re.DOTALL):
            found += 1
            assert "revision" in match.group(1), f"{path.name}: {match.group(0)[:80]!r}"
    assert found >= 12


@pytest.mark.parametrize("notify", [None, "quiet"])
async def test_a_created_job_is_the_row_as_stored_revision(
    db: Database, notify: str | None
) -> None:
    """``Job.created`` is what the insert leaves, the member's stored way of being told
    included (read by the insert when the request brings none)."""
    await db.delivery.set_notify(1, 3, "dm", now=1.0)
    new = NewJob(
        guild_id=1,
        channel_id=2,
        user_id=3,
        spec=JobSpec(Mode.TEXT, "a cat", duration=10),
        cost=2,
        period="2026-12-07",
        interaction_id=99,
        status_message_id=5,
        locale="zh-CN",
        attachment_limit=10_000_000,
        notify=notify,
    )
    async with db.transaction() as tx:
        job = await db.jobs.add(tx, new, 12.5)
    assert job == await stored(db, job)
    assert job.notify == (notify or "dm")


async def test_every_change_of_moderation_moves_its_version_moderation_version(
    db: Database,
) -> None:
    versions = [await db.moderation.version(1)]
    await db.moderation.update(1, {"strike_threshold": 5}, actor_id=9, now=1.0)
    versions.append(await db.moderation.version(1))
    entry = await db.blocklist.add(1, BlocklistKind.WORD, "lake", added_by=9, now=2.0)
    versions.append(await db.moderation.version(1))
    await db.blocklist.remove(1, entry.id)
    versions.append(await db.moderation.version(1))
    async with db.transaction() as tx:  # a write from elsewhere (a shell): a trigger's
        await tx.execute("UPDATE moderation_settings SET new_member_days = 1")
    versions.append(await db.moderation.version(1))
    assert versions == sorted(set(versions)) and len(versions) == 5  # each moved it
    assert await db.moderation.version(2) == 0  # another server's is its own
