"""How a job's row is written: the guarded ``UPDATE`` of a transition, and batch steps.

Split from ``storage.jobs`` (the repository) so that module stays about what the
repository does; these build the statements and parameters it sends.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from storage.engine import Step

UPDATABLE = frozenset(
    {
        "provider",
        "provider_task_id",
        "provider_meta",
        "submit_attempts",
        "next_attempt_at",
        "progress",
        "polls",
        "next_poll_at",
        "result_locator",
        "failure_rule",
        "failure_params",
        "delivery_attempts",
        "next_delivery_at",
        "delivered_message_id",
        "delivery_kind",
        "delivery_bytes",
        "submitted_at",
        "finished_at",
    }
)


def update_step(
    job_id: int, src: JobStatus, dst: JobStatus, now: float, updates: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The guarded ``UPDATE`` of a job from ``src`` to ``dst``, returning the new row (none:
    somebody else moved it first). It moves the row's revision."""
    sql, params = _guarded_update(job_id, src, dst, now, updates)
    return f"{sql} RETURNING *", params


def transition_steps(job: Job, dst: JobStatus, now: float, updates: dict[str, Any]) -> list[Step]:
    """A transition's two guarded ``UPDATE`` s, of which at most one moves the job.

    The first is guarded by the revision the job was read at too, and returns only the id:
    a row still at that revision is that job, so the caller knows the new row without
    SQLite handing it back (``moved``), which costs more than the write itself. The
    second runs only when another write changed the row since (its card, its thread): by
    the state alone, returning the row as it now is. Later steps check ``if_moved``."""
    sql, params = _guarded_update(job.id, job.status, dst, now, updates)
    return [
        (f"{sql} AND revision = :revision RETURNING id", {**params, "revision": job.revision}),
        (f"{sql} RETURNING *", lambda rows: None if rows[0] else params),
    ]


def _guarded_update(
    job_id: int, src: JobStatus, dst: JobStatus, now: float, updates: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The ``UPDATE`` from ``src`` to ``dst`` with ``updates``, guarded by the state, without
    its ``RETURNING``.

    A move to a terminal state also frees the job's lease in the same statement: nobody
    claims a finished job, so a lease left on it by a process killed before its release
    would stay for good."""
    unknown = updates.keys() - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = {k: encode(v) for k, v in updates.items()}
    if dst.terminal:
        values.setdefault("finished_at", now)
    # Column names come from the fixed ``UPDATABLE`` set above, never from input.
    assignments = "".join(f", {column} = :{column}" for column in sorted(values))
    if dst.terminal:  # a finished job holds no lease: a holder killed after this write
        assignments += ", lease_holder = NULL, lease_expires = NULL"  # leaves none behind
    sql = (
        "UPDATE jobs SET status = :dst, updated_at = :now, revision = revision + 1"  # noqa: S608
        f"{assignments} WHERE id = :id AND status = :src"
    )
    return sql, {**values, "dst": dst.value, "src": src.value, "now": now, "id": job_id}


def moved(job: Job, dst: JobStatus, now: float, updates: dict[str, Any]) -> Job:
    """The row ``update_step`` leaves when it found ``job`` at the revision it was read at:
    the values SQLite would hand back (a JSON object as decoded from its stored text), so
    that the two cannot be told apart (``-k revision``)."""
    changes = {k: json.loads(encode(v)) if isinstance(v, dict) else v for k, v in updates.items()}
    if dst.terminal:
        changes.setdefault("finished_at", now)
        changes["lease_holder"] = changes["lease_expires"] = None
    return job.evolved(**changes, status=dst, updated_at=now, revision=job.revision + 1)


def image_ref(
    role: str, digest: str, job_id: Callable[[list[list[sqlite3.Row]]], int]
) -> Callable[[list[list[sqlite3.Row]]], dict[str, Any]]:
    """The parameters of an image reference, once the batch inserted its job."""
    return lambda rows: {"role": role, "hash": digest, "job": job_id(rows)}


def if_moved(params: Any) -> Any:
    """A batch step that runs only if one of the batch's first two statements (the guarded
    ``UPDATE`` s of ``transition_steps``) moved the job."""
    return lambda rows: params if rows[0] or rows[1] else None


def encode(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value
