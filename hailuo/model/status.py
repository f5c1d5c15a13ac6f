"""The job's states and the only transitions allowed between them.

Status words are schema: they are stored in SQLite (a ``CHECK`` on the column
lists them), so a word is never renamed, reused or deleted.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # held for a moderator; credits reserved
    QUEUED = "queued"  # waiting for a provider slot (rate limiter, retry back-off)
    SUBMITTING = "submitting"  # intent written; the provider is being called right now
    SUBMITTED = "submitted"  # the provider returned a task id (stored with the provider name)
    RUNNING = "running"  # the provider reports the task in progress
    SUCCEEDED = "succeeded"  # the provider has the video; not posted yet
    DELIVERED = "delivered"  # the video (or its link) is posted; credits charged
    REJECTED = "rejected"  # a moderator said no; refunded
    EXPIRED = "expired"  # nobody approved in time; refunded
    CANCELLED = "cancelled"  # the member stopped it (refund before acceptance, charge after)
    FAILED = "failed"  # no video: provider failure, refusal, or an interrupted submit; refunded
    DELIVERY_FAILED = "delivery_failed"  # the video existed but could not be posted; refunded

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        JobStatus.DELIVERED,
        JobStatus.REJECTED,
        JobStatus.EXPIRED,
        JobStatus.CANCELLED,
        JobStatus.FAILED,
        JobStatus.DELIVERY_FAILED,
    }
)

#: States in which a job counts against the in-flight caps (it may still cost money).
#: A job held for a moderator counts too: otherwise a member could queue any number of
#: requests and have them all approved at once, past ``max_jobs_per_member``.
IN_FLIGHT = frozenset(
    {
        JobStatus.AWAITING_APPROVAL,
        JobStatus.QUEUED,
        JobStatus.SUBMITTING,
        JobStatus.SUBMITTED,
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
    }
)

#: The design's table, complete. Anything else is a bug (and refused by storage).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.AWAITING_APPROVAL: frozenset(
        {JobStatus.QUEUED, JobStatus.REJECTED, JobStatus.EXPIRED, JobStatus.CANCELLED}
    ),
    JobStatus.QUEUED: frozenset({JobStatus.SUBMITTING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.SUBMITTING: frozenset({JobStatus.SUBMITTED, JobStatus.QUEUED, JobStatus.FAILED}),
    # -> queued: the provider's task failed because it cannot take the request as sent
    # (odkkk's ``image_processing_error`` of a data URL): it made nothing, so the job
    # goes to the next provider that can (``Worker.apply_state``), never charged twice.
    JobStatus.SUBMITTED: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.QUEUED,
        }
    ),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.QUEUED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset({JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED}),
}


class Settlement(enum.StrEnum):
    """What entering a terminal state does to the member's reserved credits."""

    CHARGE = "charge"
    REFUND = "refund"


def settlement(src: JobStatus, dst: JobStatus) -> Settlement | None:
    """Credits are settled only on entering a terminal state (design, "The job's life")."""
    if not dst.terminal:
        return None
    if dst is JobStatus.DELIVERED:
        return Settlement.CHARGE
    if dst is JobStatus.CANCELLED and src in (JobStatus.SUBMITTED, JobStatus.RUNNING):
        # The provider accepted the task and offers no cancel: it stays charged.
        return Settlement.CHARGE
    return Settlement.REFUND


def can_transition(src: JobStatus, dst: JobStatus) -> bool:
    return dst in TRANSITIONS.get(src, frozenset())
