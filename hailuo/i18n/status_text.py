"""A job's state in words, for every front end (the Discord card, the CLI's progress line)."""

from __future__ import annotations

import math

from hailuo.i18n.messages import render
from hailuo.model.job import Job
from hailuo.model.status import JobStatus


def eta_minutes(eta: float | None) -> int | None:
    """A queued job's waiting time as a card says it: whole minutes, rounded up; 0 is
    "under a minute"; None when unknown. Cards re-render when this number changes."""
    if eta is None:
        return None
    return 0 if eta < 60 else math.ceil(eta / 60)


def status_line(job: Job, position: int | None = None, eta: float | None = None) -> str:
    locale = job.locale
    status = job.status
    if status is JobStatus.QUEUED and position:
        minutes = eta_minutes(eta)
        if minutes is None:
            return render("status.queued_at", locale, position=position)
        if minutes == 0:
            return render("status.queued_soon", locale, position=position)
        return render("status.queued_eta", locale, position=position, minutes=minutes)
    if status is JobStatus.RUNNING and job.progress:
        return render("status.running_progress", locale, progress=job.progress)
    if status in (JobStatus.FAILED, JobStatus.DELIVERY_FAILED):
        reason = render(job.failure_rule or "provider.failed", locale, **job.failure_params)
        return render(f"status.{status.value}", locale, reason=reason, cost=job.cost)
    return render(f"status.{status.value}", locale, cost=job.cost)
