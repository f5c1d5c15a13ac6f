"""The worker's leases: a job's step is worked on by one process at a time.

Several bot processes may share one database (``HAILUO_PROCESS_ID`` names each).
A step (submit, poll, deliver) runs only under the job's lease (``storage.leases``):
claimed by a guarded write, renewed while the step runs (a renew task, and a check
right before each side effect that cannot be taken back: the submit call, the post),
released when the step is done. A process that dies stops renewing, and another
takes the job over when the lease lapsed (``HAILUO_LEASE_SECONDS``).

A process restarted on the same host need not wait for its old leases to lapse: a
holder named ``host-pid`` for this host whose pid is gone is dead for certain, and its
leases are released at start-up (``release_dead``). Anywhere else only time tells.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Collection

from hailuo.clock import Clock
from hailuo.model.job import Job
from storage.jobs import StaleTransition
from storage.port import LeaseStore
from storage.to_the_end import cancelling

log = logging.getLogger(__name__)


def default_process_id() -> str:
    """``hostname-pid``: unique among the processes sharing a database, and checkable."""
    return f"{socket.gethostname()}-{os.getpid()}"


def gone_from_this_host(holder: str) -> bool:
    """Whether ``holder`` names a process of this host that no longer runs."""
    host, _, pid = holder.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (owned by someone else): alive
        return False
    return False


class LeaseLost(StaleTransition):
    """Another process took the job over (this one's lease lapsed): the step stops here."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.id, job.status)


class Leases:
    """This process's leases on jobs, by its id, for ``seconds`` at a time."""

    def __init__(
        self,
        store: LeaseStore,
        clock: Clock,
        holder: str,
        seconds: float,
        *,
        gone: Callable[[str], bool] = gone_from_this_host,
    ) -> None:
        self.store = store
        self.clock = clock
        self.holder = holder or default_process_id()
        self.seconds = seconds
        self.gone = gone
        #: Jobs a claim leased whose step is done: released together (``release_finished``).
        self._finished: list[int] = []

    def until(self) -> float:
        return self.clock() + self.seconds

    async def claim_due(
        self, limit: int, now: float, skip: Collection[str] = (), busy: Collection[int] = ()
    ) -> list[Job]:
        """Queued jobs free for us (not leased), and the due steps, leased to us; polls of
        the providers in ``skip`` (their status budget is spent for now) and the jobs in
        ``busy`` (their step still runs here) are left alone."""
        until = now + self.seconds
        return await self.store.claim_due(self.holder, now, until, limit, skip, busy)

    async def claim(self, job: Job) -> Job | None:
        """Lease ``job`` for a step; None when another process holds it or moved it since."""
        now = self.clock()
        fresh = await self.store.claim(job.id, self.holder, now, now + self.seconds)
        if fresh is None:
            return None
        if fresh.status is not job.status or fresh.updated_at != job.updated_at:
            await self.release(job.id)  # someone else took a step meanwhile: not due now
            return None
        return fresh

    async def hold(self, job: Job) -> None:
        """Before a side effect that cannot be taken back: still ours, for a lease more."""
        if not await self.store.renew(job.id, self.holder, self.until()):
            log.warning("lease of %s lost; another process has it", job.log_context())
            raise LeaseLost(job)

    async def release(self, job_id: int) -> None:
        try:
            await self.store.release(job_id, self.holder)
        except asyncio.CancelledError:
            raise
        except Exception:  # it lapses by itself; a failed release costs a delay only
            log.exception("could not release the lease of job %d", job_id)

    def finished(self, job_id: int) -> None:
        """The step of a job a claim leased is done: its lease goes with the others done."""
        self._finished.append(job_id)

    async def release_finished(self) -> None:
        """Release the leases of the claimed steps done since the last call, in one write."""
        done, self._finished = self._finished, []
        if not done:
            return
        try:
            await self.store.release_many(done, self.holder)
        except asyncio.CancelledError:
            raise
        except Exception:  # they lapse by themselves; a failed release costs a delay only
            log.exception("could not release %d lease(s)", len(done))

    def step(self, job: Job, *, claimed: bool = False) -> LeasedStep:
        """Hold the job's lease while the block runs (renewed), and release it after.

        Yields whether the job is ours: ``claimed`` (a claim leased it already, and
        releases it with the others at its end), else a claim of it now (False: another
        process has it, or took this step meanwhile), released when the block ends."""
        return LeasedStep(self, job, claimed)

    def renewing(self, job_id: int) -> Renewing:
        """Renew the job's lease every third of its length while the block runs.

        Most steps end well within a third of a lease: the renew task is only started
        (a timer) once one has run that long."""
        return Renewing(self, job_id)

    async def _renew(self, job_id: int) -> None:
        while True:
            try:
                if not await self.store.renew(job_id, self.holder, self.until()):
                    if not await self.store.ended(job_id):  # a finished job holds no lease
                        log.warning("lease of job %d taken over while its step ran", job_id)
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # the next beat tries again; the lease outlives one miss
                log.exception("could not renew the lease of job %d", job_id)
            await asyncio.sleep(self.seconds / 3)

    async def release_dead(self) -> list[str]:
        """Free the leases of processes of this host that are gone (a restart); their ids."""
        dead = [h for h in await self.store.holders() if h != self.holder and self.gone(h)]
        for holder in dead:
            count = await self.store.release_holder(holder)
            log.warning("released %d lease(s) of %s, a process that is gone", count, holder)
        return dead


class Renewing:
    """``Leases.renewing``: a timer, and a renew task once the step outlived it.

    A class, not a generator-based context manager: every status query of 10,000 open
    jobs enters one, and the generator machinery cost more than the timer."""

    __slots__ = ("job_id", "leases", "task", "timer")

    def __init__(self, leases: Leases, job_id: int) -> None:
        self.leases = leases
        self.job_id = job_id
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.leases.seconds / 3, self._start)

    def _start(self) -> None:
        renew = self.leases._renew(self.job_id)
        self.task = asyncio.create_task(renew, name=f"hailuo-lease-{self.job_id}")

    async def __aexit__(self, *exc: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task  # a beat under way ends first (its write waits for its commit)
            except asyncio.CancelledError:
                if cancelling():
                    raise  # this step was cancelled meanwhile too: that goes on


class LeasedStep:
    """``Leases.step``: whether the job is ours for the block, its lease renewed meanwhile
    and given back after (with the other claimed steps done when ``claimed``)."""

    __slots__ = ("claimed", "job", "leased", "leases", "renew")

    def __init__(self, leases: Leases, job: Job, claimed: bool) -> None:
        self.leases = leases
        self.job = job
        self.claimed = claimed
        self.leased = False
        self.renew: Renewing | None = None

    async def __aenter__(self) -> bool:
        self.leased = self.claimed or await self.leases.claim(self.job) is not None
        if self.leased:
            self.renew = self.leases.renewing(self.job.id)
            await self.renew.__aenter__()
        return self.leased

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.renew is not None:
                await self.renew.__aexit__(*exc)
        finally:
            if self.claimed:
                self.leases.finished(self.job.id)
            elif self.leased:
                await self.leases.release(self.job.id)
