"""Jobs: rows in, frozen ``Job`` dataclasses out, and every state change a compare-and-set.

A transition is ``UPDATE … WHERE id = :id AND status = :from``; zero rows
means somebody else (a second poll, a moderator, a restart) moved the job
first, and ``StaleTransition`` is raised with nothing written. The credit
settlement that a terminal state implies is written in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from hailuo.model.errors import UserInputError
from hailuo.model.job import Job, NewJob, StoredImage
from hailuo.model.spec import JobSpec
from hailuo.model.status import JobStatus, Settlement, can_transition, settlement
from storage.db import sha256_hex
from storage.engine import Engine, Step, reading, statements, within
from storage.engine import Statements as Tx
from storage.job_rows import if_moved, image_ref, moved, transition_steps, update_step
from storage.jobs_sql import (
    CLAIM_STATUS_MESSAGE,
    COUNT_BY_STATUS,
    CREATE_STATE,
    DELETE_OLD_IMAGE_REFS,
    DELETE_UNREFERENCED_IMAGES,
    GET_STATE,
    INSERT_IMAGE,
    INSERT_IMAGE_REF,
    INSERT_JOB,
    MEMBER_NOTIFY,
    PUT_DURATION,
    PUT_STATE,
    RECORD_POLLS,
    SELECT_BY_INTERACTION,
    SELECT_BY_OPEN_STATUS,
    SELECT_BY_STATUS,
    SELECT_BY_TASK,
    SELECT_DURATIONS,
    SELECT_ENDED_WITHOUT_CARD,
    SELECT_IMAGES,
    SELECT_JOB,
    SELECT_JOB_BY_INTERACTION,
    SELECT_NEXT_DUE,
    SELECT_OPEN,
    SELECT_RECENT_FOR_MEMBER,
    SELECT_RECENT_RUNS,
    SET_CARD_SEEN,
    SET_CARDS_SEEN,
    SET_STATUS_MESSAGE,
    SWAP_STATE,
)
from storage.ledger import LedgerEntryKind, entry_steps
from storage.port import PollRecord, UnitOfWork

#: The new row's id and the way its member is told (maybe read by the insert): the rest of
#: the row the creator knows (``Job.created``), and SQLite returning all of it cost more
#: than the insert itself.
INSERT_JOB_RETURNING = INSERT_JOB.rstrip() + "\nRETURNING id, notify\n"
INSERT_JOB_MEMBER_NOTIFY = INSERT_JOB_RETURNING.replace(":notify,", MEMBER_NOTIFY + ",", 1)


class DuplicateInteraction(UserInputError):
    """The interaction already made a job (Discord delivered it twice, or a press landed
    twice): one interaction id makes at most one job, and one reservation."""


class StaleTransition(Exception):
    """The job was not in the expected state: another actor moved it first."""

    def __init__(self, job_id: int, expected: JobStatus) -> None:
        super().__init__(f"job {job_id} is no longer {expected.value}")
        self.job_id = job_id
        self.expected = expected


class JobRepository:
    def __init__(self, db: Engine) -> None:
        self.db = db

    async def create(self, uow: UnitOfWork, new: NewJob, now: float) -> int:
        """Insert the job and its reservation; the new job's id (see ``add``)."""
        return (await self.add(uow, new, now)).id

    async def add(self, uow: UnitOfWork, new: NewJob, now: float) -> Job:
        """Insert the job and its reservation (in ``uow``, the caller's unit of work); raises
        ``DuplicateInteraction`` (with nothing written) if its interaction already made a job.

        One hop: the job row, its images, the ledger row and the running balances go to
        the database thread as one batch (the later statements take the new job's id); the
        job is ``new`` as stored (``Job.created``) with the id the insert returns. A
        ``new.notify`` of None takes the member's stored choice, read by the insert in the
        same transaction (and returned with the id)."""
        tx = statements(uow)
        if new.interaction_id is not None and self.db.dialect == "postgresql":
            # PostgreSQL aborts a transaction on a failed INSERT, so the look-up after the
            # unique index refused it (below, SQLite's one-hop path) cannot run there: look
            # first (writers are serialised by the advisory lock, so nobody slips in between).
            row = await tx.fetch_one(SELECT_BY_INTERACTION, {"interaction": new.interaction_id})
            if row is not None:
                raise DuplicateInteraction("request.duplicate", job_id=int(row["id"]))

        def job_id(rows: list[list[sqlite3.Row]]) -> int:
            return int(rows[0][0]["id"])

        insert = INSERT_JOB_RETURNING if new.notify is not None else INSERT_JOB_MEMBER_NOTIFY
        steps: list[Step] = [(insert, self._job_params(new, now))]
        for role, (mime, data) in new.images.items():
            digest = sha256_hex(data)
            image = {"hash": digest, "mime": mime, "data": data, "size": len(data)}
            steps.append((INSERT_IMAGE, image))
            steps.append((INSERT_IMAGE_REF, image_ref(role, digest, job_id)))
        steps += entry_steps(
            guild_id=new.guild_id,
            user_id=new.user_id,
            job_id=job_id,
            kind=LedgerEntryKind.RESERVE,
            delta=-new.cost,
            period=new.period,
            actor_id=new.user_id,
            reason="job created",
            now=now,
        )
        try:
            rows = await tx.batch(steps)
        except sqlite3.IntegrityError:
            if new.interaction_id is None:
                raise
            row = await tx.fetch_one(SELECT_BY_INTERACTION, {"interaction": new.interaction_id})
            if row is None:
                raise
            raise DuplicateInteraction("request.duplicate", job_id=int(row["id"])) from None
        inserted = rows[0][0]
        return Job.created(new, int(inserted["id"]), str(inserted["notify"]), now)

    @staticmethod
    def _job_params(new: NewJob, now: float) -> dict[str, Any]:
        return {
            "guild_id": new.guild_id,
            "channel_id": new.channel_id,
            "user_id": new.user_id,
            "interaction_id": new.interaction_id,
            "status_message_id": new.status_message_id,
            "status": new.status.value,
            "spec": new.spec.to_json(),
            "cost": new.cost,
            "period": new.period,
            "locale": new.locale,
            "attachment_limit": new.attachment_limit,
            "notify": new.notify,
            "now": now,
        }

    async def get(self, job_id: int, tx: UnitOfWork | None = None) -> Job | None:
        """The job as committed, or as the caller's unit of work ``tx`` sees it."""
        row = await reading(self.db, tx).fetch_one(SELECT_JOB, {"id": job_id})
        return Job.from_row(row) if row else None

    async def by_interaction(self, interaction_id: int) -> Job | None:
        """The job an interaction made, if it made one (one at most: migration 004)."""
        row = await self.db.fetch_one(SELECT_JOB_BY_INTERACTION, {"interaction": interaction_id})
        return Job.from_row(row) if row else None

    async def images(self, job_id: int) -> dict[str, StoredImage]:
        rows = await self.db.fetch_all(SELECT_IMAGES, {"id": job_id})
        return {r["role"]: StoredImage(r["role"], r["mime"], bytes(r["data"])) for r in rows}

    async def sweep_images(self, before: float) -> int:
        """Drop the images of jobs that ended before ``before``; return how many were freed.

        An image shared by a re-roll that is still young keeps living through its
        reference; only bytes nobody points to any more are deleted.
        """
        async with self.db.bulk() as tx:  # scans the finished jobs: off the loop
            await tx.execute(DELETE_OLD_IMAGE_REFS, {"before": before})
            freed = await tx.execute(DELETE_UNREFERENCED_IMAGES)
        if freed:
            await self.db.incremental_vacuum()  # the freed pages go back to the disk
        return freed

    async def open_jobs(self) -> list[Job]:
        rows = await self.db.fetch_all(SELECT_OPEN)
        return sorted((Job.from_row(r) for r in rows), key=lambda job: job.id)

    async def next_due(self, after: float) -> float | None:
        """The earliest time after ``after`` a poll or a delivery falls due (None: none)."""
        row = await self.db.fetch_one(SELECT_NEXT_DUE, {"after": after})
        return None if row is None or row["t"] is None else float(row["t"])

    async def record_polls(self, records: Sequence[PollRecord]) -> set[int]:
        """Write many polls that found their task running, in one transaction; the ids
        written (a job that moved meanwhile is left as it is, and its id not returned)."""
        if not records:
            return set()
        async with self.db.bulk() as tx:  # up to hundreds of rows: off the loop
            rows = await tx.fetch_all(RECORD_POLLS, {"records": json.dumps(records)})
        return {int(row[0]) for row in rows}

    async def set_cards_seen(self, seen: Sequence[tuple[int, str]]) -> set[int]:
        """``set_card_seen`` for many cards in one transaction; the ids written."""
        if not seen:
            return set()
        async with self.db.bulk() as tx:
            rows = await tx.fetch_all(SET_CARDS_SEEN, {"seen": json.dumps(list(seen))})
        return {int(row[0]) for row in rows}

    async def set_card_seen(self, job_id: int, seen: str) -> None:
        """Remember what the job's card shows now (a digest), for the next start."""
        async with self.db.transaction() as tx:
            await tx.execute(SET_CARD_SEEN, {"id": job_id, "seen": seen})

    async def durations(self) -> dict[str, list[float]]:
        """Every kind of task's recent durations at its provider (seconds, oldest first)."""
        rows = await self.db.fetch_all(SELECT_DURATIONS)
        return {r["key"]: [float(v) for v in json.loads(r["recent"])] for r in rows}

    async def put_duration(self, key: str, recent: list[float], now: float) -> None:
        """Store a kind of task's recent durations (they replace the stored ones)."""
        async with self.db.transaction() as tx:
            await tx.execute(PUT_DURATION, {"key": key, "recent": json.dumps(recent), "now": now})

    async def by_status(self, status: JobStatus) -> list[Job]:
        """In id order (an open state's come through ``jobs_in_flight``, in no order)."""
        sql = SELECT_BY_STATUS if status.terminal else SELECT_BY_OPEN_STATUS
        rows = await self.db.fetch_all(sql, {"status": status.value})
        return sorted((Job.from_row(r) for r in rows), key=lambda job: job.id)

    async def ended_without_card(self, since: float) -> list[Job]:
        """Jobs that ended since ``since`` in a channel, with no card known."""
        rows = await self.db.fetch_all(SELECT_ENDED_WITHOUT_CARD, {"since": since})
        return [Job.from_row(r) for r in rows]

    async def recent_runs(self, limit: int) -> list[tuple[JobSpec, float]]:
        """Run times of the latest delivered jobs, oldest first (``hailuo.jobs.durations``)."""
        rows = await self.db.fetch_all(SELECT_RECENT_RUNS, {"limit": limit})
        return [(JobSpec.from_json(r["spec"]), float(r["seconds"])) for r in reversed(rows)]

    async def by_task(self, provider: str, task_id: str) -> Job | None:
        row = await self.db.fetch_one(SELECT_BY_TASK, {"provider": provider, "task": task_id})
        return Job.from_row(row) if row else None

    async def recent_for_member(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self.db.fetch_all(
            SELECT_RECENT_FOR_MEMBER, {"guild": guild_id, "user": user_id, "limit": limit}
        )
        return [Job.from_row(r) for r in rows]

    async def count_by_status(self) -> dict[str, int]:
        return {r["status"]: int(r["n"]) for r in await self.db.fetch_all(COUNT_BY_STATUS)}

    async def set_status_message(
        self, job_id: int, channel_id: int, message_id: int, now: float
    ) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                SET_STATUS_MESSAGE,
                {"id": job_id, "channel": channel_id, "message": message_id, "now": now},
            )

    async def claim_status_message(self, job_id: int, message_id: int, now: float) -> bool:
        """Remember ``message_id`` as the job's card unless it has one; False if it had."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                CLAIM_STATUS_MESSAGE, {"id": job_id, "message": message_id, "now": now}
            )
        return changed == 1

    async def transition(
        self,
        job: Job,
        dst: JobStatus,
        now: float,
        *,
        reason: str = "",
        actor_id: int | None = None,
        tx: UnitOfWork | None = None,
        **updates: Any,
    ) -> Job:
        """Move ``job`` from the state it was read in to ``dst``, settling credits if terminal.

        Guarded: the row must still be in ``job.status`` (else ``StaleTransition``). Inside
        the caller's unit of work ``tx`` when given, else in one of its own.
        """
        async with within(self.db, tx) as own:
            return await self._transition(own, job, dst, now, reason, actor_id, updates)

    async def _transition(
        self,
        tx: Tx,
        job: Job,
        dst: JobStatus,
        now: float,
        reason: str,
        actor_id: int | None,
        updates: dict[str, Any],
    ) -> Job:
        src = job.status
        if not can_transition(src, dst):
            raise ValueError(f"job {job.id}: {src.value} -> {dst.value} is not an allowed move")
        # One hop: the guarded UPDATEs (``transition_steps``), and only if one moved the
        # job, the settlement's ledger row with the running balances it moves.
        steps = transition_steps(job, dst, now, updates)
        settle = settlement(src, dst)
        if settle is not None:
            kind = LedgerEntryKind.CHARGE if settle is Settlement.CHARGE else LedgerEntryKind.REFUND
            entry = entry_steps(
                guild_id=job.guild_id,
                user_id=job.user_id,
                job_id=job.id,
                kind=kind,
                delta=0 if settle is Settlement.CHARGE else job.cost,
                period=job.period,
                actor_id=actor_id,
                reason=reason or dst.value,
                now=now,
                settled=job.cost,
                reserved_at=job.created_at,
            )
            steps += [(sql, if_moved(params)) for sql, params in entry]
        rows = await tx.batch(steps)
        if rows[0]:  # the row was the job as read: it is now that job moved
            return moved(job, dst, now, updates)
        if rows[1]:  # written meanwhile (its card, its thread): the row as it now is
            return Job.from_row(rows[1][0])
        raise StaleTransition(job.id, src)

    async def update(self, job: Job, now: float, **updates: Any) -> Job:
        """Change fields without changing state, still guarded by the state it was read in."""
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(*update_step(job.id, job.status, job.status, now, updates))
        if row is None:
            raise StaleTransition(job.id, job.status)
        return Job.from_row(row)

    async def get_state(self, key: str) -> str | None:
        row = await self.db.fetch_one(GET_STATE, {"key": key})
        return str(row["value"]) if row else None

    async def put_state(self, key: str, value: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(PUT_STATE, {"key": key, "value": value})

    async def swap_state(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: absent).

        Several processes on one database race for one-off work (the command sync):
        exactly one of those that read the same value wins.
        """
        async with self.db.transaction() as tx:
            if expected is None:
                changed = await tx.execute(CREATE_STATE, {"key": key, "value": value})
            else:
                changed = await tx.execute(
                    SWAP_STATE, {"key": key, "value": value, "expected": expected}
                )
        return changed == 1
