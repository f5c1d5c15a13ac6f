"""Several processes, one queue: each job step under a lease (issue 14, item 2).

Two workers (process ids ``a`` and ``b``) share one SQLite file through two connections,
as two bot processes would. Every job is submitted once, posted once and settled once;
a process that dies mid-step keeps its leases only until they lapse, and the other
takes its jobs over then (the clock is the tests' own)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hailuo.assembly import Parts, Ports
from hailuo.assembly import build_core as assemble
from hailuo.jobs.leases import Leases, gone_from_this_host
from hailuo.model.job import Job
from hailuo.model.provider import PreparedInput, Provider, SubmitReceipt
from hailuo.model.status import JobStatus
from hailuo.settings import SettingsError, load_settings
from providers.minimax import MiniMaxProvider
from storage.db import Database
from tests.core import NoModerators, NoRemover
from tests.processes import LEASE, Process, two_processes
from tests.provider_matrix import ledger_kinds
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock, RecordingNotifier


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []


async def both_tick(a: Process, b: Process, clock: FakeClock, rounds: int = 1) -> None:
    for _ in range(rounds):
        await asyncio.gather(a.core.worker.tick(), b.core.worker.tick())
        clock.advance(5)


async def statuses(process: Process, jobs: list[Job]) -> list[JobStatus]:
    found = [await process.core.jobs.get(job.id) for job in jobs]
    return [job.status for job in found if job is not None]


async def test_two_workers_submit_and_deliver_each_job_once_lease(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    async with two_processes(tmp_path / "shared.sqlite3", clock, sim) as (a, b):
        jobs = [await a.core.new_job(user_id=100 + i) for i in range(4)]
        jobs += [await b.core.new_job(user_id=200 + i) for i in range(4)]
        for _ in range(40):
            if set(await statuses(a, jobs)) == {JobStatus.DELIVERED}:
                break
            await both_tick(a, b, clock)
        assert set(await statuses(a, jobs)) == {JobStatus.DELIVERED}

        assert len(sim.submits) == len(jobs)  # one submission per job
        posts = Counter(p.job_id for p in a.core.notifier.posted + b.core.notifier.posted)
        assert posts == Counter({job.id: 1 for job in jobs})  # one post per job
        for job in jobs:  # one settlement per job
            assert await ledger_kinds(a.db, job.id) == ["reserve", "charge"]
            fresh = await a.core.jobs.get(job.id)
            assert fresh is not None and fresh.lease_holder is None  # released when done


async def test_a_lease_is_exclusive_until_it_lapses_lease(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    async with two_processes(tmp_path / "shared.sqlite3", clock, sim) as (a, b):
        job = await a.core.new_job()
        mine = Leases(a.db.leases, clock, "a", LEASE)
        theirs = Leases(b.db.leases, clock, "b", LEASE)
        held = await mine.claim(job)
        assert held is not None and held.lease_holder == "a"
        assert await theirs.claim(job) is None
        assert [j.id for j in await theirs.claim_due(64, clock())] == []  # not in b's line
        clock.advance(LEASE / 2)
        await mine.hold(job)  # renewed: a whole lease from now
        clock.advance(LEASE - 1)
        assert await theirs.claim(job) is None
        clock.advance(2)  # lapsed: b may take it, and a learns it lost it
        taken = await theirs.claim(job)
        assert taken is not None and taken.lease_holder == "b"
        with pytest.raises(Exception, match="no longer"):
            await mine.hold(job)
        await mine.release(job.id)  # a's late release does not free b's lease
        again = await b.core.jobs.get(job.id)
        assert again is not None and again.lease_holder == "b"


class HeldAfterAccepting:
    """MiniMax as the adapter sends it, except that the process hears the answer of the
    submit only once ``answer`` is set while ``hold`` is set: the provider has the task,
    and the answer is on its way (or never comes: the process dies)."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.hold = False
        self.accepted = asyncio.Event()
        self.answer = asyncio.Event()

    async def submit(self, prepared: PreparedInput) -> SubmitReceipt:
        receipt = await self.inner.submit(prepared)
        if self.hold:
            self.accepted.set()
            await self.answer.wait()
        return receipt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class HeldPoster(RecordingNotifier):
    """Posts hang (before Discord has anything) while ``hold`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.posting = asyncio.Event()

    async def post_video(self, job: Job, video: Path, size: int, **kw: Any) -> int:
        if self.hold:
            self.posting.set()
            await asyncio.Event().wait()
        return await super().post_video(job, video, size, **kw)


async def test_a_dead_process_jobs_are_taken_over_when_the_lease_lapses(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    async with aiohttp.ClientSession() as session:
        held = HeldAfterAccepting(
            MiniMaxProvider(session, api_key="mm-test-key", base_url=sim.base_url)
        )
        poster = HeldPoster()
        async with two_processes(
            tmp_path / "shared.sqlite3",
            clock,
            sim,
            notifiers=(poster, RecordingNotifier()),
            providers=(held, None),
        ) as (a, b):
            # One job made by a process that then waits to deliver it ...
            delivering = await a.core.new_job(user_id=1)
            await a.core.run_until(delivering.id, JobStatus.SUCCEEDED)
            # ... and one it submits: the provider accepts, the answer never comes back.
            submitting = await a.core.new_job(user_id=2)
            held.hold = poster.hold = True
            tick = asyncio.create_task(a.core.worker.tick())
            await held.accepted.wait()
            await poster.posting.wait()

            # Process a dies: its connection is gone and its tasks with it (no release).
            await a.db.close()
            for call in (tick, *a.core.worker.submitter.in_flight):
                call.cancel()
            await asyncio.gather(tick, return_exceptions=True)
            assert len(sim.submits) == 2  # one per job

            # Within the lease, b leaves both alone: a may still be at work.
            for _ in range(int(LEASE // 5) - 1):
                await b.core.worker.tick()
                clock.advance(5)
            left = await b.core.jobs.get(delivering.id)
            assert left is not None and left.lease_holder == "a"
            assert b.core.notifier.posted == []
            assert await statuses(b, [submitting, delivering]) == [
                JobStatus.SUBMITTING,
                JobStatus.SUCCEEDED,
            ]

            # Once a's leases lapsed, b takes both over: the submit the provider may hold is
            # never sent again (ended and refunded), the video is posted once.
            clock.advance(10)
            await b.core.run_until(delivering.id, JobStatus.DELIVERED)
            await b.core.run_until(submitting.id, JobStatus.FAILED)
            ended = await b.core.jobs.get(submitting.id)
            assert ended is not None and ended.failure_rule == "job.interrupted_submit"
            assert len(sim.submits) == 2  # one per job
            assert [p.job_id for p in b.core.notifier.posted] == [delivering.id]
            assert poster.posted == []
            assert await ledger_kinds(b.db, submitting.id) == ["reserve", "refund"]
            assert await ledger_kinds(b.db, delivering.id) == ["reserve", "charge"]


async def test_a_stop_keeps_the_lease_of_a_submit_under_way_lease(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    """A stop cancels the worker while a submit the provider took waits for its answer: the
    call goes on until its outcome is recorded, and the step waits for it with the job's
    lease held. Given back at the cancellation, a process starting meanwhile (a rolling
    deploy) would end the job as an interrupted submit and refund it while the provider
    makes its video."""
    async with aiohttp.ClientSession() as session:
        held = HeldAfterAccepting(
            MiniMaxProvider(session, api_key="mm-test-key", base_url=sim.base_url)
        )
        async with two_processes(
            tmp_path / "shared.sqlite3", clock, sim, providers=(held, None)
        ) as (a, b):
            job = await a.core.new_job(user_id=1)
            held.hold = True
            loop = asyncio.create_task(a.core.worker.run(asyncio.Event()))
            await asyncio.wait_for(held.accepted.wait(), 10)
            loop.cancel()  # the end of a stop's grace
            # (a bounded wait for what must not happen: the old code ended here at once)
            await asyncio.wait({loop}, timeout=0.5)
            assert not loop.done()  # its step waits for the submit's outcome
            await b.core.worker.recover()  # the other process starts meanwhile
            await b.core.worker.tick()
            sending = await b.core.jobs.get(job.id)
            assert sending is not None and sending.status is JobStatus.SUBMITTING
            assert sending.lease_holder == "a"
            held.answer.set()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(loop, 10)
            sent = await b.core.jobs.get(job.id)
            assert sent is not None and sent.status is JobStatus.SUBMITTED
            assert sent.lease_holder is None  # given back once its outcome was recorded
            assert await ledger_kinds(b.db, job.id) == ["reserve"]
            assert len(sim.submits) == 1


ports = Ports(notifier=RecordingNotifier(), approvals=NoModerators(), remover=NoRemover())


async def dead_pid() -> int:
    """The pid of a process of this host that ran and exited."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    return child.pid


async def test_a_restart_on_this_host_frees_the_dead_process_leases_at_once_lease(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    host, gone = socket.gethostname(), await dead_pid()
    assert gone_from_this_host(f"{host}-{gone}")
    assert not gone_from_this_host(f"{host}-{os.getpid()}")  # this very process
    assert not gone_from_this_host(f"{host}-{os.getppid()}")  # alive
    assert not gone_from_this_host(f"elsewhere-{gone}")  # another host: only time tells
    async with two_processes(tmp_path / "shared.sqlite3", clock, sim) as (a, _):
        crashed, elsewhere = [await a.core.new_job(user_id=u) for u in (1, 2)]
        for job, holder in ((crashed, f"{host}-{gone}"), (elsewhere, f"elsewhere-{gone}")):
            job = await a.core.jobs.transition(
                job, JobStatus.SUBMITTING, clock(), provider="minimax"
            )
            assert await a.db.leases.claim(job.id, holder, clock(), clock() + LEASE) is not None
        await a.core.worker.recover()  # the restarted process, before any lease lapsed
        assert await statuses(a, [crashed, elsewhere]) == [JobStatus.FAILED, JobStatus.SUBMITTING]
        assert await ledger_kinds(a.db, crashed.id) == ["reserve", "refund"]


async def test_a_finished_job_keeps_no_lease_lease(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator
) -> None:
    """A process killed after a job's last write, before its release, leaves no lease on
    it: nobody claims a finished job, so the terminal move frees the lease itself."""
    async with two_processes(tmp_path / "shared.sqlite3", clock, sim) as (a, _):
        job = await a.core.new_job()
        assert await a.db.leases.claim(job.id, "elsewhere-1", clock(), clock() + LEASE)
        moved = await a.core.jobs.transition(job, JobStatus.SUBMITTING, clock(), provider="x")
        assert moved.lease_holder == "elsewhere-1"  # a step under way keeps its lease
        ended = await a.core.jobs.transition(moved, JobStatus.FAILED, clock())
        assert ended.lease_holder is None and ended.lease_expires is None
        assert await a.db.leases.holders() == []


async def test_a_renew_after_the_job_finished_is_no_takeover_lease(
    tmp_path: Path, clock: FakeClock, sim: MiniMaxSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A step that goes on after its job's last write (a card edit, a notice) finds its
    lease gone at the next renew beat: that is no takeover, and says nothing; a lease
    another process took still warns."""
    async with two_processes(tmp_path / "shared.sqlite3", clock, sim) as (a, b):
        mine = Leases(a.db.leases, clock, "a", LEASE)
        theirs = Leases(b.db.leases, clock, "b", LEASE)
        done, taken = [await a.core.new_job(user_id=u) for u in (1, 2)]
        assert await mine.claim(done) and await mine.claim(taken)
        await a.core.jobs.transition(done, JobStatus.CANCELLED, clock())
        with caplog.at_level(logging.WARNING, logger="hailuo.jobs.leases"):
            await mine._renew(done.id)  # the renew loop ends: nothing left to hold
            assert "taken over" not in caplog.text
            clock.advance(LEASE + 1)
            assert await theirs.claim(taken) is not None
            await mine._renew(taken.id)
        assert f"lease of job {taken.id} taken over" in caplog.text


async def test_a_step_cancelled_while_its_renew_beat_ends_stays_cancelled_lease(
    db: Database, clock: FakeClock
) -> None:
    """A step's block ends while its renew beat waits for its commit: the step waits for the
    beat to end, and a cancellation of the step meanwhile (a stop, a timeout) goes on; it
    was swallowed with the beat's own."""
    leases = Leases(db.leases, clock, "me", LEASE)
    busy, release = threading.Event(), threading.Event()

    def hold() -> None:  # aiosqlite's thread busy: the beat's COMMIT waits behind this
        busy.set()
        release.wait(5)

    try:
        db._conn._tx.put_nowait((None, hold))
        await asyncio.to_thread(busy.wait, 5)
        renewing = leases.renewing(1)
        await renewing.__aenter__()
        renewing._start()  # the beat, now rather than a third of a lease later
        for _ in range(10):  # its write is done and waits for the group's COMMIT
            await asyncio.sleep(0)
        ending = asyncio.ensure_future(renewing.__aexit__(None, None, None))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not ending.done()  # the beat it cancelled still waits for its commit
        ending.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(ending), 5)
        assert renewing.task is not None and renewing.task.cancelled()
    finally:
        release.set()


async def test_the_process_id_and_lease_length_are_settings_lease(
    db: Database, clock: FakeClock
) -> None:
    base = {"DISCORD_TOKEN": "t"}
    settings = load_settings({**base}, dotenv_path=None)
    assert (settings.process_id, settings.lease_seconds) == ("", 60.0)
    env = {**base, "HAILUO_PROCESS_ID": "bot-2", "HAILUO_LEASE_SECONDS": "15"}
    chosen = load_settings(env, dotenv_path=None)
    assert (chosen.process_id, chosen.lease_seconds) == ("bot-2", 15.0)
    async with aiohttp.ClientSession() as session:
        leases = [
            assemble(s, db, session, clock, ports, Parts(providers={})).worker.leases
            for s in (settings, chosen)
        ]
    assert (leases[0].holder, leases[0].seconds) == (f"{socket.gethostname()}-{os.getpid()}", 60)
    assert (leases[1].holder, leases[1].seconds) == ("bot-2", 15.0)
    with pytest.raises(SettingsError, match="HAILUO_PROCESS_ID"):
        load_settings({**base, "HAILUO_PROCESS_ID": "two words"}, dotenv_path=None)
    with pytest.raises(SettingsError, match="HAILUO_LEASE_SECONDS"):
        load_settings({**base, "HAILUO_LEASE_SECONDS": "0.5"}, dotenv_path=None)
