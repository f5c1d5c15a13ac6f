"""The submit step: which provider a queued job goes to, the call, and what a refusal means.

Submissions go through ``hailuo.jobs.resilience`` (one limiter and one circuit
breaker per provider). A queued job goes to the first provider in order that
can serve its spec, has not been given up for it, and whose circuit is not
open; when that provider has no free submission slot the job waits in line
(its status shows the queue position), it is never sent further down the
order for a rate limit. Before acceptance a job moves on from a provider
that rejected the key or is out of balance (at once, and the admins are told
through the log and a metric), whose circuit opened, or that kept failing
for ``failover_patience``; the last capable provider is retried until the
queue deadline instead. A job a provider accepted is never sent elsewhere.

Retries are budgeted by time, not by count: a refusal about the provider (5xx,
429, a connect failure or a timeout before the body went out) puts the job
back in ``queued``, with back-off and jitter for an outage and no back-off of
its own for a rate limit (the provider's limiter pauses everyone and the job
keeps its place in line). The member sees the position and a waiting time
read from the limiter's schedule (``QueueForecast``); the wait is bounded by
``HAILUO_QUEUE_TIMEOUT`` (``queue_deadline``), after which the job fails,
refunded, saying which providers it waited for.

``submitting`` is written before the provider is called; an answer that may
have landed without reaching us ends the job like a crash there would (the
design, "The job's life"): failed and refunded, never sent again.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from hailuo.jobs.capabilities import can_serve
from hailuo.jobs.resilience import AccountAlerts, CircuitState, Resilience
from hailuo.jobs.shared_limits import SharedLimits
from hailuo.jobs.steps import Step, StepKit
from hailuo.model.capability import Table
from hailuo.model.errors import (
    UNSUPPORTED_IMAGE,
    UNSUPPORTED_TIER,
    ProviderError,
    ProviderErrorKind,
)
from hailuo.model.job import Job
from hailuo.model.provider import PreparedInput
from hailuo.model.spec import JobSpec
from hailuo.model.status import JobStatus
from storage.port import JobStore, ProviderLimitStore
from storage.to_the_end import finish

log = logging.getLogger(__name__)

#: The failure rules a member may read (each one has a catalog entry).
INTERRUPTED_SUBMIT = "job.interrupted_submit"
NO_PROVIDER = "job.no_provider"
QUEUE_TIMEOUT = "job.queue_timeout"
#: No provider left, and the last one given up refused the bot's key or account: the
#: member is told the bot cannot reach its video service (the admins hear of it).
SERVICE_UNREACHABLE = "job.service_unreachable"
#: ... refused the tier (Freepik's retired 768p): the job is never moved to another tier.
TIER_NOT_OFFERED = "job.tier_not_offered"
#: ... refused the image as the bot sends it (odkkk's ``image_processing_error``).
IMAGE_NOT_TAKEN = "job.image_not_taken"


class Submitter(Step):
    """Admits queued jobs to providers and records each submit's outcome."""

    def __init__(
        self,
        kit: StepKit,
        order: list[str],
        *,
        alerts: AccountAlerts,
        prepare: Callable[[Job], Awaitable[PreparedInput]],
        wake: Callable[[], None],
        capabilities: Table,
        submit_caps: Mapping[str, int | None] | None = None,
        serves: Callable[[str, JobSpec], bool] | None = None,
        callback_url: Callable[[str, int], str | None] | None = None,
        resilience: Resilience | None = None,
        image_url: Callable[[str, Job, str], str | None] | None = None,
        first_poll: Callable[[str, Job, bool], float] | None = None,
        limits: ProviderLimitStore | None = None,
    ) -> None:
        super().__init__(kit)
        self.order = order
        self.alerts = alerts
        self.prepare = prepare
        self._wake = wake
        #: Each provider's submission limiter (fixed caps, else learned) and circuit breaker.
        self.resilience = resilience or Resilience(
            kit.clock, kit.providers, caps=submit_caps, on_circuit_change=self._circuit_changed
        )
        #: The same, shared with every process on the database (``limits``, when given).
        self.shared = SharedLimits(self.resilience, limits, kit.clock)
        #: Provider name -> what it accepts (``providers.registry.TABLE``, handed in by the wiring).
        self.capabilities = capabilities
        self.serves = serves or (lambda name, spec: can_serve(name, spec, self.capabilities))
        self.callback_url = callback_url
        #: A signed URL of the bot's own server for a provider that wants image URLs.
        self.image_url = image_url
        #: Seconds from a submit to its first status query (provider, job, calls back?);
        #: the worker's learned schedule (``jobs.schedule``), else ``poll_seconds``.
        self.first_poll = first_poll or (lambda name, job, called_back: kit.config.poll_seconds)
        #: Submits under way; a stop waits for them (``finish``).
        self.in_flight: set[asyncio.Future[None]] = set()

    async def finish(self, within: float) -> bool:
        """At a stop: wait for the submits under way to record their outcome (shielded calls).

        True when none is left. One still unanswered after ``within`` seconds stays in
        ``submitting`` and is ended at the next start like any interrupted submit.
        """
        pending = set(self.in_flight)
        if pending:
            log.info("waiting for %d submit(s) under way", len(pending))
            done, pending = await asyncio.wait(pending, timeout=max(0.0, within))
            for future in done:
                if not future.cancelled() and future.exception() is not None:
                    log.warning("a submit under way failed at stop: %r", future.exception())
        return not pending

    def candidates(self, job: Job) -> list[str]:
        """Providers in order that can serve the job and that it has not given up on."""
        given_up = job.provider_meta.get("given_up", [])
        return [
            name
            for name in self.order
            if name in self.providers and name not in given_up and self.serves(name, job.spec)
        ]

    def admit(self, job: Job, now: float) -> Coroutine[Any, Any, None] | None:
        """What a queued job does now: be submitted, fail, or (None) keep waiting in line."""
        # Counted from when the job joined the queue (a held job: from its approval),
        # before the back-off, so the bound holds to the tick.
        if now - float(job.provider_meta.get("queued_at", job.created_at)) > (
            self.config.queue_deadline
        ):
            params = self._timeout_params(job)
            if params["providers"] and all(map(self.alerts.in_trouble, params["providers"])):
                # Every provider it waited for has a refused key or an empty account.
                return self._fail(job, SERVICE_UNREACHABLE, {})
            return self._fail(job, QUEUE_TIMEOUT, params)
        if job.next_attempt_at > now:
            return None
        candidates = self.candidates(job)
        if not candidates:
            return self._fail(job, *no_provider_left(job))
        name = self.resilience.admit(candidates)
        if name is None:
            return None  # every candidate is open-circuited, or the first healthy one is full
        return self._submit(job, name)

    async def _submit(self, job: Job, name: str) -> None:
        """Shielded: a stop that cancels the step lets the call answer and its outcome land,
        and the step waits for it with the job's lease held (given back at once, another
        process would end the job as an interrupted submit while the video is being made)."""
        call = asyncio.ensure_future(self._send(job, name))
        self.in_flight.add(call)
        call.add_done_callback(self.in_flight.discard)
        await finish(lambda: call)

    async def _send(self, job: Job, name: str) -> None:
        if not await self.shared.reserve(name):
            return  # another process took the provider's slot: the job waits in line
        try:
            job, prepared = await self._intent(job, name)
        except BaseException:
            # Nothing went out (the job moved on, its lease was lost, its inputs failed):
            # the slot goes back, or the provider's next submit would wait for it.
            await self.shared.unsent(name)
            raise
        try:
            receipt = await self.providers[name].submit(prepared)
        except ProviderError as exc:
            await self._refused(job, name, exc)
            return
        except Exception:
            # An adapter bug after the call began: the body may have landed, so this is
            # handled like an unknown outcome, never sent again.
            log.exception("submit crashed %s", job.log_context())
            lost = ProviderError(
                ProviderErrorKind.UNKNOWN_OUTCOME, provider=name, detail="adapter error"
            )
            await self._refused(job, name, lost)
            return
        now = self.clock()
        # The task id is stored before anything else happens.
        job = await self.jobs.transition(
            job,
            JobStatus.SUBMITTED,
            now,
            provider_task_id=receipt.task_id,
            provider_meta={**job.provider_meta, **receipt.meta},
            submitted_at=now,
            next_poll_at=now + self.first_poll(name, job, bool(prepared.callback_url)),
        )
        await self.shared.record(name, None)
        self.alerts.resolved(name)
        self.metrics.provider_call(name, "submit", "ok")
        log.info("submitted %s", job.log_context())
        await self._show(job)

    async def _intent(self, job: Job, name: str) -> tuple[Job, PreparedInput]:
        """The request as ``name`` takes it, and the intent to send it written
        (``submitting``) while the job is still ours."""
        prepared = await self.prepare(job)
        url = self.callback_url(name, job.id) if self.callback_url else None
        if url:
            prepared = dataclasses.replace(prepared, callback_url=url)
        if self.image_url is not None:
            prepared = self._image_urls(prepared, job, name)
        await self._hold(job)  # the intent is written only while the job is ours
        job = await self.jobs.transition(
            job,
            JobStatus.SUBMITTING,
            self.clock(),
            provider=name,
            submit_attempts=job.submit_attempts + 1,
        )
        return job, prepared

    async def _refused(self, job: Job, name: str, exc: ProviderError) -> None:
        now = self.clock()
        await self.shared.record(name, exc)
        self.metrics.provider_call(name, "submit", exc.kind.value)
        log.warning("submit refused %s: %s (%s)", job.log_context(), exc, exc.detail)
        if exc.kind is ProviderErrorKind.UNKNOWN_OUTCOME:
            # The body may have landed: handled exactly like a crash in ``submitting``.
            await self._fail(job, INTERRUPTED_SUBMIT, {"provider": name})
            return
        if not exc.retryable:
            # About the request itself: every provider serves the same model and would refuse it.
            await self._fail(job, exc.rule, {"provider": name, "code": exc.provider_code or ""})
            return
        account = exc.kind in (ProviderErrorKind.AUTH, ProviderErrorKind.BALANCE)
        if account:
            self.alerts.report(name, exc.kind, guild_id=job.guild_id)
        # A provider that does not take this request (a retired tier, an image form) is
        # left at once, like a refused key: waiting would not change its answer.
        unsupported = exc.kind is ProviderErrorKind.UNSUPPORTED
        meta = dict(job.provider_meta)
        first_failure = dict(meta.get("first_failure", {}))
        if exc.kind is not ProviderErrorKind.RATE_LIMITED:
            first_failure.setdefault(name, now)
            meta["first_failure"] = first_failure
        others = [other for other in self.candidates(job) if other != name]
        patience_over = now - first_failure.get(name, now) >= self.config.failover_patience
        # A rate limit never moves or fails a job; an outage moves it only when there
        # is somewhere to go (the last provider is retried until the queue deadline).
        give_up = (
            account
            or unsupported
            or (exc.kind is not ProviderErrorKind.RATE_LIMITED and patience_over and bool(others))
        )
        if give_up:
            meta["given_up"] = [*meta.get("given_up", []), name]
            meta["given_up_why"] = {**meta.get("given_up_why", {}), name: why_given_up(exc)}
            log.warning("moving %s on from %s", job.log_context(), name)
        if give_up or (others and not self.resilience.breaker(name).available()):
            delay = 0.0  # the next provider at once (an open circuit is skipped by admit)
        elif exc.kind is ProviderErrorKind.RATE_LIMITED:
            # The provider's limiter now pauses everyone for its Retry-After and slows
            # down; the job keeps its place in line (admission goes in id order).
            delay = 0.0
        else:
            delay = self.backoff.delay(job.submit_attempts, self.rng, exc.retry_after)
            if others and not patience_over:
                # One more try right at the end of the patience, so a provider that is
                # still failing then is left after about 30 s, not after the next back-off.
                mark = first_failure[name] + self.config.failover_patience - now
                delay = min(delay, max(0.0, mark))
        job = await self.jobs.transition(
            job,
            JobStatus.QUEUED,
            now,
            provider=None,
            provider_meta=meta,
            next_attempt_at=now + delay,
        )
        if give_up and not others:
            await self._fail(job, *no_provider_left(job))
            return
        self._wake()

    def _image_urls(self, prepared: PreparedInput, job: Job, name: str) -> PreparedInput:
        """The images as signed URLs of the bot's server, where ``name`` wants URLs."""
        assert self.image_url is not None
        first = self.image_url(name, job, "first") if prepared.first_frame else None
        last = self.image_url(name, job, "last") if prepared.last_frame else None
        return dataclasses.replace(
            prepared,
            first_frame=first or prepared.first_frame,
            last_frame=last or prepared.last_frame,
        )

    def forecast(self, now: float) -> QueueForecast:
        """Waiting times for the jobs that stay in line this tick."""
        return QueueForecast(self, now)

    def _timeout_params(self, job: Job) -> dict[str, Any]:
        given_up = job.provider_meta.get("given_up", [])
        waited = [name for name in self.order if name in given_up or name in self.providers]
        tried = [name for name in waited if name in given_up or self.serves(name, job.spec)]
        return {
            "minutes": max(1, round(self.config.queue_deadline / 60)),
            "providers": tried or waited,
        }

    def _circuit_changed(self, provider: str, state: CircuitState) -> None:
        self.metrics.provider_call(provider, "circuit", state.value)


class QueueForecast:
    """When each job still in line is expected to be sent, for one tick of the worker.

    Jobs are asked in line order. Each goes to the first of its candidates whose
    circuit lets a submission through (the one ``admit`` would pick; with every
    circuit open, the one that reopens first), and takes the next slot of that
    provider's limiter schedule, so the times follow the rate in force now: its
    pause, its fixed cap and its adaptive limit. A job's own back-off and an open
    circuit only push its time later.
    """

    def __init__(self, submitter: Submitter, now: float) -> None:
        self._submitter = submitter
        self._now = now
        self._ahead: dict[str, int] = {}
        self._slots: dict[str, list[float]] = {}

    def eta(self, job: Job) -> float | None:
        """Seconds until ``job`` is expected to be sent; None when no provider can take it."""
        candidates = self._submitter.candidates(job)
        if not candidates:
            return None
        resilience = self._submitter.resilience
        reopens = 0.0
        name = next((c for c in candidates if resilience.breaker(c).available()), None)
        if name is None:
            name = min(candidates, key=lambda c: resilience.breaker(c).reopens_in())
            reopens = resilience.breaker(name).reopens_in()
        ahead = self._ahead.get(name, 0) + 1
        self._ahead[name] = ahead
        slots = self._slots.get(name, [])
        if len(slots) < ahead:
            # Grown by doubling: a long line costs one schedule per provider, not one per job.
            slots = resilience.limiter(name).schedule(max(8, ahead, 2 * len(slots)))
            self._slots[name] = slots
        at = max(slots[ahead - 1], job.next_attempt_at, self._now + reopens)
        return max(0.0, at - self._now)


def why_given_up(exc: ProviderError) -> str:
    """Why a provider was given up, as stored in the job: the kind, or the unsupported part."""
    if exc.kind is ProviderErrorKind.UNSUPPORTED and exc.provider_code:
        return f"{exc.kind.value}:{exc.provider_code}"
    return exc.kind.value


def no_provider_left(job: Job) -> tuple[str, dict[str, Any]]:
    """The failure rule (and its numbers) of a job no provider is left for.

    The member reads why: the last provider given up says it (a refused key or an
    empty account is "the bot cannot reach its video service"; a refused tier or
    image names it), else the plain "no provider could take it".
    """
    given_up: list[str] = job.provider_meta.get("given_up", [])
    why: dict[str, str] = job.provider_meta.get("given_up_why", {})
    if not given_up or given_up[-1] not in why:
        return NO_PROVIDER, {}
    last = given_up[-1]
    reason = why[last]
    if reason in (ProviderErrorKind.AUTH.value, ProviderErrorKind.BALANCE.value):
        return SERVICE_UNREACHABLE, {}
    if reason == f"{ProviderErrorKind.UNSUPPORTED.value}:{UNSUPPORTED_TIER}":
        return TIER_NOT_OFFERED, {"provider": last, "resolution": job.spec.resolution}
    if reason == f"{ProviderErrorKind.UNSUPPORTED.value}:{UNSUPPORTED_IMAGE}":
        return IMAGE_NOT_TAKEN, {"provider": last}
    return NO_PROVIDER, {}


async def prepared_input(jobs: JobStore, job: Job) -> PreparedInput:
    """The job as a provider receives it: the spec and its stored images as data URLs."""
    stored = await jobs.images(job.id)
    urls = {role: _data_url(image.mime, image.data) for role, image in stored.items()}
    return PreparedInput(spec=job.spec, first_frame=urls.get("first"), last_frame=urls.get("last"))


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
