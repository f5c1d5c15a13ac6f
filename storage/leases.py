"""Job leases: which process works on a job's step now, and until when (migration 010).

Several bot processes share one queue. A step of a job (submit, poll, deliver) is
taken only under a lease written by a guarded ``UPDATE``: the row must be free (no
holder), already ours, or its lease must have lapsed. The holder renews it while the
step runs and releases it when done; a process that dies stops renewing, and another
takes the job over once the lease lapsed. The status compare-and-set
(``storage.jobs``) stays the safety net: a lease only decides who tries.

The due jobs are claimed in one statement per kind, earliest first. On PostgreSQL the
inner ``SELECT`` takes ``FOR UPDATE SKIP LOCKED`` (``claim_statements``), so two processes
claiming at once split the rows instead of waiting on each other; SQLite has one
writer at a time and needs no clause. Times are the caller's clock (seconds).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from storage.engine import Engine

#: Free for ``holder``: nobody's, already its own, or lapsed.
_FREE = "(lease_holder IS NULL OR lease_holder = :holder OR lease_expires < :now)"
#: The claim hands back the rows it leased (``RETURNING``, in no set order: sorted by
#: the caller). Reading them back by holder instead would walk every due row, ours or
#: not, at every claim: 10,000 due after a restart, eighty claims of 128.
_CLAIM = (
    "UPDATE jobs SET lease_holder = :holder, lease_expires = :until, revision = revision + 1 "
    "WHERE id IN ("
    "SELECT id FROM jobs WHERE {due} ORDER BY {order} LIMIT :limit{lock}) RETURNING *"
)
#: The steps the worker claims in a batch: (which rows it may take, in which order).
_POLLS = "status IN ('submitted', 'running') AND next_poll_at <= :now"
_DELIVERIES = "status = 'succeeded' AND next_delivery_at <= :now"
_KINDS = (
    (f"{_POLLS} AND {_FREE}{{skip}}{{busy}}", "next_poll_at"),
    (f"{_DELIVERIES} AND {_FREE}{{busy}}", "next_delivery_at"),
    # A submit whose process died mid-call (its lease lapsed): never sent again, only ended.
    (
        "status = 'submitting' AND lease_holder IS NOT NULL AND lease_holder != :holder "
        "AND lease_expires < :now",
        "lease_expires",  # the longest lapsed first, through ``jobs_submitting_lease``
    ),
)
#: The queued jobs free for us, in id order through the partial index ``jobs_queued``
#: (migration 013), not the table.
SELECT_QUEUED_FREE = f"SELECT * FROM jobs WHERE status = 'queued' AND {_FREE} ORDER BY id"  # noqa: S608
CLAIM_JOB = (
    "UPDATE jobs SET lease_holder = :holder, lease_expires = :until, "  # noqa: S608
    f"revision = revision + 1 WHERE id = :id AND {_FREE}"
)
SELECT_JOB = "SELECT * FROM jobs WHERE id = :id"
SELECT_STATUS = "SELECT status FROM jobs WHERE id = :id"
RENEW = (
    "UPDATE jobs SET lease_expires = :until, revision = revision + 1 "
    "WHERE id = :id AND lease_holder = :holder"
)
RELEASE = (
    "UPDATE jobs SET lease_holder = NULL, lease_expires = NULL, revision = revision + 1 "
    "WHERE id = :id AND lease_holder = :holder"
)
RELEASE_MANY = (
    "UPDATE jobs SET lease_holder = NULL, lease_expires = NULL, revision = revision + 1 "
    "WHERE lease_holder = :holder AND id IN ({ids})"
)
#: Ids per statement of ``RELEASE_MANY`` (under every engine's parameter limit).
_CHUNK = 500
SELECT_HOLDERS = "SELECT DISTINCT lease_holder FROM jobs WHERE lease_holder IS NOT NULL"
RELEASE_HOLDER = (
    "UPDATE jobs SET lease_holder = NULL, lease_expires = NULL, revision = revision + 1 "
    "WHERE lease_holder = :holder"
)


def claim_statements(
    dialect: str, skip_names: Sequence[str], busy_names: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Per kind of step, the claim (it returns the rows it leased) and the column they
    are taken in order of, for ``dialect``.

    On PostgreSQL the claim's inner ``SELECT`` locks its rows ``FOR UPDATE SKIP LOCKED``;
    SQLite has one writer at a time and needs no clause. Polls of the providers whose
    status budget is spent (parameters ``skip_names``) are left out, and so are the jobs
    whose step this process still runs (parameters ``busy_names``: a worker that claims
    its next slice while the last one runs must not lease the same rows again, they are
    still due until their step writes): only generated parameter names go into the
    text, never a value.
    """
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    names = ", ".join(f":{name}" for name in skip_names)
    left_out = f" AND provider NOT IN ({names})" if skip_names else ""
    running = ", ".join(f":{name}" for name in busy_names)
    busy = f" AND id NOT IN ({running})" if busy_names else ""
    return [
        (_CLAIM.format(due=free.format(skip=left_out, busy=busy), order=order, lock=lock), order)
        for free, order in _KINDS
    ]


class LeaseRepository:
    """Implements ``storage.port.LeaseStore``; nothing here changes a job's status."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    async def claim_due(
        self,
        holder: str,
        now: float,
        until: float,
        limit: int,
        skip: Collection[str] = (),
        busy: Collection[int] = (),
    ) -> list[Job]:
        """The worker's work at ``now``, as ``holder`` may take it.

        Every queued job free for ``holder`` (id order: the line), read but not leased
        (only the ones admitted are claimed, one by one); then, leased to ``holder``
        until ``until``, up to ``limit`` due polls and ``limit`` due deliveries (earliest
        first) and the submits left by a process whose lease lapsed. Polls of the
        providers in ``skip`` and the jobs in ``busy`` (steps still running) are left out.
        """
        params: dict[str, object] = {"holder": holder, "now": now, "until": until, "limit": limit}
        skipped = {f"s{i}": name for i, name in enumerate(sorted(skip))}
        running = {f"b{i}": job_id for i, job_id in enumerate(sorted(busy))}
        params.update(skipped)
        params.update(running)
        claimed = []
        async with self.db.bulk() as tx:  # a round's claims, up to hundreds of rows: off the loop
            queued = await tx.fetch_all(SELECT_QUEUED_FREE, params)
            for claim, order in claim_statements(self.db.dialect, list(skipped), list(running)):
                rows = await tx.fetch_all(claim, params)
                claimed += sorted(rows, key=lambda row: (row[order], row["id"]))
        return [Job.from_row(r) for r in (*queued, *claimed)]

    async def claim(self, job_id: int, holder: str, now: float, until: float) -> Job | None:
        """Lease one job to ``holder`` if it is free for it; the job as it is now, or None."""
        params = {"id": job_id, "holder": holder, "now": now, "until": until}
        async with self.db.transaction() as tx:
            if await tx.execute(CLAIM_JOB, params) != 1:
                return None
            row = await tx.fetch_one(SELECT_JOB, params)
        return Job.from_row(row) if row else None

    async def renew(self, job_id: int, holder: str, until: float) -> bool:
        """Extend ``holder``'s lease; False when it is no longer its own (taken over)."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(RENEW, {"id": job_id, "holder": holder, "until": until})
        return changed == 1

    async def ended(self, job_id: int) -> bool:
        """Whether the job is finished (or gone): a finished job holds no lease, so a renew
        that found none may have lost it that way, not to another process."""
        row = await self.db.fetch_one(SELECT_STATUS, {"id": job_id})
        return row is None or JobStatus(row["status"]).terminal

    async def release(self, job_id: int, holder: str) -> None:
        """Give the job back (its step is done); a lease taken over meanwhile stays."""
        async with self.db.transaction() as tx:
            await tx.execute(RELEASE, {"id": job_id, "holder": holder})

    async def release_many(self, job_ids: list[int], holder: str) -> None:
        """Give several jobs back at once (a tick's finished steps), in one transaction."""
        async with self.db.bulk() as tx:
            for start in range(0, len(job_ids), _CHUNK):
                chunk = job_ids[start : start + _CHUNK]
                names = {f"j{i}": job_id for i, job_id in enumerate(chunk)}
                # Only generated parameter names go into the text, never a value.
                sql = RELEASE_MANY.format(ids=", ".join(f":{name}" for name in names))
                await tx.execute(sql, {**names, "holder": holder})

    async def holders(self) -> list[str]:
        """Every process that holds a lease now (or held one that lapsed)."""
        return [str(r["lease_holder"]) for r in await self.db.fetch_all(SELECT_HOLDERS)]

    async def release_holder(self, holder: str) -> int:
        """Free every lease of ``holder`` (a process known to be gone); how many."""
        async with self.db.transaction() as tx:
            return await tx.execute(RELEASE_HOLDER, {"holder": holder})
