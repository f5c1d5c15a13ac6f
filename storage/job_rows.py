"""How a job's row is written: the guarded ``UPDATE`` of a transition, and batch steps.

Split from ``storage.jobs`` (the repository) so that module stays about what the
repository does; these build the statements and parameters it sends.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from hailuo.model.status import JobStatus

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
    somebody else moved it first).

    A move to a terminal state also frees the job's lease in the same statement: nobody
    claims a finished job, so a lease left on it by a process killed before its release
    would stay for good."""
    unknown = set(updates) - UPDATABLE
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
        f"UPDATE jobs SET status = :dst, updated_at = :now{assignments} "  # noqa: S608
        "WHERE id = :id AND status = :src RETURNING *"
    )
    return sql, {**values, "dst": dst.value, "src": src.value, "now": now, "id": job_id}


def image_ref(
    role: str, digest: str, job_id: Callable[[list[list[sqlite3.Row]]], int]
) -> Callable[[list[list[sqlite3.Row]]], dict[str, Any]]:
    """The parameters of an image reference, once the batch inserted its job."""
    return lambda rows: {"role": role, "hash": digest, "job": job_id(rows)}


def if_moved(params: Any) -> Any:
    """A batch step that runs only if the batch's first statement (the guarded UPDATE)
    returned the moved row."""
    return lambda rows: params if rows[0] else None


def encode(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value
