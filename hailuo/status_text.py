"""A job's state in words, for every front end (the Discord card, the CLI's progress line)."""

from __future__ import annotations

from hailuo.messages import render
from hailuo.status import JobStatus
from storage.jobs import Job


def status_line(job: Job, position: int | None = None) -> str:
    locale = job.locale
    status = job.status
    if status is JobStatus.QUEUED and position:
        return render("status.queued_at", locale, position=position)
    if status is JobStatus.RUNNING and job.progress:
        return render("status.running_progress", locale, progress=job.progress)
    if status in (JobStatus.FAILED, JobStatus.DELIVERY_FAILED):
        reason = render(job.failure_rule or "provider.failed", locale, **job.failure_params)
        return render(f"status.{status.value}", locale, reason=reason, cost=job.cost)
    return render(f"status.{status.value}", locale, cost=job.cost)
