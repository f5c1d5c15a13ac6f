"""The worker's forever loop does not wait for a slice's slowest step (``jobs.inflight``).

``Worker.run`` claims the next due work while steps of the last slice still run: a
task whose status query hangs does not hold back the others, the rows still under way
are not claimed again, and a step that ended and fell due again keeps the lease of its
new claim (the ended step's lease is released before that claim, never after it). On an
injected clock, against a real SQLite file (and PostgreSQL with the contract tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from hailuo.jobs.grouped import Grouped
from hailuo.jobs.inflight import InFlight
from hailuo.jobs.notify import StatusView
from hailuo.jobs.resilience import Resilience
from hailuo.jobs.steps import WorkerConfig
from hailuo.model.job import Job
from hailuo.model.provider import Phase, PreparedInput, SubmitReceipt, TaskState
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage.db import Database
from storage.port import PollRecord
from tests.core import Core, build_core
from tests.pg_server import BOTH_ENGINES
from tests.support import FakeClock, RecordingNotifier

ENGINES = BOTH_ENGINES
SPEC = JobSpec(mode=Mode.TEXT, prompt="an inflight test")
#: A test's safety net only: every wait below ends on an event long before this.
PATIENCE = 30.0


class HangingProvider:
    """Tasks that stay running; the query of ``hang`` waits until ``release`` is set.

    Each query records the task and the lease the job held while it was asked."""

    name = "minimax"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.hang: str | None = None
        self.release = asyncio.Event()
        self.hanging = asyncio.Event()
        self.queries: list[tuple[str, str | None]] = []
        self.asked = asyncio.Condition()
        self.submits: list[str] = []
        self._tasks = 0

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        self._tasks += 1
        async with self.asked:
            self.submits.append(job.spec.prompt)
            self.asked.notify_all()
        return SubmitReceipt(f"t{self._tasks}")

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        # a release the loop sent on before this query began has landed after one read
        await self.db.fetch_one("SELECT 1 AS one")
        row = await self.db.fetch_one(
            "SELECT lease_holder FROM jobs WHERE provider_task_id = :t", {"t": task_id}
        )
        async with self.asked:
            self.queries.append((task_id, None if row is None else row["lease_holder"]))
            self.asked.notify_all()
        if task_id == self.hang:
            self.hanging.set()
            await self.release.wait()
        return TaskState(Phase.RUNNING, progress=None)

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        raise NotImplementedError("never finished here")

    async def asked_times(self, task_id: str, times: int) -> None:
        async with self.asked:
            await self.asked.wait_for(lambda: sum(t == task_id for t, _ in self.queries) >= times)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def submitted(core: Core, user_id: int) -> str:
    job = await core.new_job(SPEC, user_id=user_id)
    job = await core.run_until(job.id, JobStatus.SUBMITTED)
    assert job.provider_task_id is not None
    return job.provider_task_id


async def one_due_job(core: Core, clock: FakeClock, provider: HangingProvider) -> tuple[str, Job]:
    """One submitted job, due for a status query now; the provider's queries so far forgotten."""
    task = await submitted(core, 1)
    (job,) = await core.jobs.open_jobs()
    await core.jobs.update(job, clock(), next_poll_at=clock())
    provider.queries.clear()
    return task, job


async def test_inflight_loop_goes_on_while_a_query_hangs(
    db: Database, session: Any, clock: FakeClock
) -> None:
    provider = HangingProvider(db)
    core = build_core(db, clock, session, {"minimax": provider})
    slow, quick = await submitted(core, 1), await submitted(core, 2)
    provider.hang = slow
    worker, holder = core.worker, core.worker.leases.holder
    for job in await core.jobs.open_jobs():  # both due now
        await core.jobs.update(job, clock(), next_poll_at=clock())
    provider.queries.clear()

    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(provider.hanging.wait(), PATIENCE)
        await asyncio.wait_for(provider.asked_times(quick, 1), PATIENCE)
        for _ in range(3):  # the quick task falls due again and again meanwhile
            clock.advance(61)
            worker.wake()
            asked = sum(t == quick for t, _ in provider.queries)
            await asyncio.wait_for(provider.asked_times(quick, asked + 1), PATIENCE)
        # the hanging one was asked once: still under way, it is not claimed again
        assert [t for t, _ in provider.queries].count(slow) == 1
        # every query ran under this process's lease, the new claims' too
        assert {lease for _, lease in provider.queries} == {holder}
        provider.release.set()
    finally:
        stop.set()
        worker.wake()
        await asyncio.wait_for(loop, PATIENCE)
    # stopped: the steps under way finished, and their leases were given back
    assert {job.lease_holder for job in await core.jobs.open_jobs()} == {None}


async def test_inflight_a_callback_during_the_jobs_own_query_is_asked_after_it(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """A provider's callback that comes while the job's step still asks the provider (a
    query sent before the task finished) is not dropped: the task is asked again as soon
    as that step ends, not at the safety net's next query, minutes later."""
    provider = HangingProvider(db)
    core = build_core(db, clock, session, {"minimax": provider})
    task, job = await one_due_job(core, clock, provider)
    provider.hang = task
    tick = asyncio.create_task(core.worker.tick())
    await asyncio.wait_for(provider.hanging.wait(), PATIENCE)  # its query is out
    core.worker.poll_soon(job.id, "minimax")  # the callback, while that step runs
    await asyncio.wait_for(core.worker.drain(), PATIENCE)  # it found the job busy
    assert [t for t, _ in provider.queries] == [task]
    provider.release.set()  # the query answers "running", and the step ends
    await asyncio.wait_for(tick, PATIENCE)
    await asyncio.wait_for(core.worker.drain(), PATIENCE)
    assert [t for t, _ in provider.queries] == [task, task]  # asked again at once


async def test_inflight_a_submit_that_never_went_out_gives_its_slot_back(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """One submit a minute: a job whose submit fails before the call (its inputs could not
    be prepared) gives the minute's slot back, so the next job in line goes at once, not a
    minute later (nor a half-open circuit's probe two minutes later)."""
    provider = HangingProvider(db)
    limits = Resilience(clock, ["minimax"], caps={"minimax": 1})
    core = build_core(db, clock, session, {"minimax": provider}, resilience=limits)
    await core.new_job(replace(SPEC, prompt="first"), user_id=1)
    await core.new_job(replace(SPEC, prompt="second"), user_id=2)
    submitter = core.worker.submitter
    prepare = submitter.prepare

    async def unreadable_once(job: Job) -> PreparedInput:
        submitter.prepare = prepare
        raise OSError("the stored image cannot be read")

    submitter.prepare = unreadable_once
    await core.worker.tick()  # the first takes the slot and fails before the call
    await core.worker.tick()  # the same instant: the second goes
    assert provider.submits == ["second"]


async def test_inflight_room_empty_settle_and_cancel() -> None:
    emptied: list[int] = []
    steps = InFlight(room=1, on_empty=lambda: emptied.append(len(steps)))
    gates = [asyncio.Event() for _ in range(3)]

    async def step(gate: asyncio.Event) -> None:
        await gate.wait()

    futures = [asyncio.ensure_future(step(gate)) for gate in gates]
    for future in futures:
        steps.add(future)
    assert len(steps) == 3
    room = asyncio.ensure_future(steps.room())
    gates[0].set()
    await futures[0]
    await asyncio.sleep(0)  # the done callbacks run
    assert not room.done()  # two left, room for one
    gates[1].set()
    await asyncio.wait_for(room, PATIENCE)  # one left: room
    assert len(steps) == 1 and emptied == []
    gates[2].set()
    await asyncio.wait_for(steps.settle(), PATIENCE)
    assert len(steps) == 0 and emptied == [0]  # told once, when the last one ended

    hung = asyncio.ensure_future(step(asyncio.Event()))
    steps.add(hung)
    await steps.cancel()
    assert hung.cancelled() and len(steps) == 0


async def test_inflight_a_query_slot_is_free_while_the_answer_is_written(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """One query slot: while the first answer's write waits for its commit, the second
    task is asked already (the slot bounds the calls, not the writes behind them)."""
    provider = HangingProvider(db)
    config = WorkerConfig(poll_seconds=5, query_concurrency=1)
    core = build_core(db, clock, session, {"minimax": provider}, config=config)
    first, second = await submitted(core, 1), await submitted(core, 2)
    open_jobs = await core.jobs.open_jobs()
    for n, job in enumerate(open_jobs):  # the first due first
        await core.jobs.update(job, clock(), next_poll_at=clock() - 10 + n)
    commit = asyncio.Event()
    writing = asyncio.Event()
    record_polls = core.jobs.record_polls

    async def slow_commit(records: Sequence[PollRecord]) -> set[int]:
        writing.set()
        await commit.wait()
        return await record_polls(records)

    follower = core.worker.follower
    follower.writes = Grouped(slow_commit, lambda record: record.job_id)
    provider.queries.clear()
    tick = asyncio.create_task(core.worker.tick())
    await asyncio.wait_for(writing.wait(), PATIENCE)  # the first answer is being written
    await asyncio.wait_for(provider.asked_times(second, 1), PATIENCE)  # and the next asked
    assert [t for t, _ in provider.queries] == [first, second]
    commit.set()
    await asyncio.wait_for(tick, PATIENCE)
    assert [job.polls for job in await core.jobs.open_jobs()] == [
        job.polls + 1 for job in open_jobs
    ]


class HeldCards(RecordingNotifier):
    """Records every card; the queued card of job ``hold`` is drawn once ``drawn`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: int | None = None
        self.drawn = asyncio.Event()
        self.drawing = asyncio.Event()

    async def show_status(self, view: StatusView) -> None:
        await super().show_status(view)
        if view.job.id == self.hold and view.job.status is JobStatus.QUEUED:
            self.drawing.set()
            await self.drawn.wait()


async def test_inflight_a_queued_job_whose_card_is_drawn_keeps_its_place(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """One submit a minute: while the loop still draws the card of the first job in line,
    a submit that comes free goes to it, never to the job behind it."""
    provider = HangingProvider(db)
    cards = HeldCards()
    limits = Resilience(clock, ["minimax"], caps={"minimax": 1})
    core = build_core(db, clock, session, {"minimax": provider}, notifier=cards, resilience=limits)
    await submitted(core, 1)  # the minute's only submit
    second = await core.new_job(replace(SPEC, prompt="second"), user_id=2)
    third = await core.new_job(replace(SPEC, prompt="third"), user_id=3)
    cards.hold = second.id
    worker = core.worker
    rounds = asyncio.Condition()
    claims = 0
    claim_due = worker.leases.claim_due

    async def counted(*args: Any, **kwargs: Any) -> list[Job]:
        nonlocal claims
        due = await claim_due(*args, **kwargs)
        async with rounds:
            claims += 1
            rounds.notify_all()
        return due

    worker.leases.claim_due = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(cards.drawing.wait(), PATIENCE)  # second in line, drawn
        clock.advance(61)  # a submit comes free
        async with rounds:
            seen = claims
            worker.wake()
            await asyncio.wait_for(rounds.wait_for(lambda: claims > seen), PATIENCE)
        await asyncio.sleep(0)  # the round's admissions are made in the claim's turn
        assert (await core.jobs.get(third.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]
        cards.drawn.set()
        worker.wake()
        async with provider.asked:
            await asyncio.wait_for(provider.asked.wait_for(lambda: len(provider.submits) > 1), 30)
        assert provider.submits[1:] == ["second"]  # the submit went to the first in line
    finally:
        cards.drawn.set()
        stop.set()
        worker.wake()
        await asyncio.wait_for(loop, PATIENCE)
    assert (await core.jobs.get(third.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]


class CrashingProvider(HangingProvider):
    """The status query of task ``crash`` raises what no adapter turns into a
    ``ProviderError`` (a bug in the step); the others answer "running"."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.crash: str | None = None

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        state = await super().query(task_id, meta)
        if task_id == self.crash:
            raise RuntimeError("a bug in the step")
        return state


async def test_inflight_a_crashing_step_waits_its_backoff_before_it_runs_again(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """A step that raises leaves its job due: the loop, woken when the step ended, does
    not claim it and ask again at once (which burnt the provider's status budget as fast
    as the loop turned). It waits a backoff that grows with each crash in a row, while the
    other jobs go on; the crashed job's lease is given back."""
    provider = CrashingProvider(db)
    core = build_core(db, clock, session, {"minimax": provider})
    broken, healthy = await submitted(core, 1), await submitted(core, 2)
    provider.crash = broken
    worker = core.worker

    async def due_now() -> None:
        await db_due_now(db, clock)

    await due_now()
    provider.queries.clear()
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(provider.asked_times(broken, 1), PATIENCE)
        await asyncio.wait_for(provider.asked_times(healthy, 1), PATIENCE)
        first_wait = worker.cooldown.ends_in(clock())
        assert first_wait is not None and first_wait > 0
        for rounds in range(2, 5):  # rounds of the loop, the healthy task asked in each
            await due_now()
            worker.wake()
            await asyncio.wait_for(provider.asked_times(healthy, rounds), PATIENCE)
        assert [t for t, _ in provider.queries].count(broken) == 1  # held back meanwhile
        clock.advance(first_wait + 0.01)  # its wait is over: asked again, and crashes again
        worker.wake()
        await asyncio.wait_for(provider.asked_times(broken, 2), PATIENCE)
        await due_now()  # a later round: the crash was recorded by then
        worker.wake()
        await asyncio.wait_for(provider.asked_times(healthy, 5), PATIENCE)
        assert [t for t, _ in provider.queries].count(broken) == 2
        second_wait = worker.cooldown.ends_in(clock())
        assert second_wait is not None and second_wait > first_wait  # longer after each
    finally:
        stop.set()
        worker.wake()
        await asyncio.wait_for(loop, PATIENCE)
    assert {job.lease_holder for job in await core.jobs.open_jobs()} == {None}


async def test_inflight_a_step_that_ends_well_forgets_its_crashes(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """The backoff counts crashes in a row: once a step of the job ends well, the next
    crash starts it over; a tick (the tests' stepping) and a provider's callback honour
    the wait too."""
    provider = CrashingProvider(db)
    core = build_core(db, clock, session, {"minimax": provider})
    task, job = await one_due_job(core, clock, provider)
    provider.crash = task
    await core.worker.tick()
    await core.worker.tick()  # the same instant: held back, not asked
    core.worker.poll_soon(job.id, "minimax")  # nor by a provider's callback
    await core.worker.drain()
    assert [t for t, _ in provider.queries] == [task]
    assert core.worker.cooldown.held(clock()) == {job.id}
    clock.advance(core.worker.cooldown.ends_in(clock()) or 0.0)
    provider.crash = None
    await core.worker.tick()  # asked again, and this time it answers
    assert [t for t, _ in provider.queries] == [task, task]
    assert not core.worker.cooldown and core.worker.cooldown.ends_in(clock()) is None


class HeldSubmits(HangingProvider):
    """Submits wait until ``go`` is set (``submitting`` tells one began)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.go = asyncio.Event()
        self.submitting = asyncio.Event()

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        self.submitting.set()
        await self.go.wait()
        return await super().submit(job)


async def test_inflight_a_round_that_fails_part_way_keeps_the_steps_it_started(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """A round whose claim fails after it started some steps (here the second queued job's
    admission raises) still follows the steps it started: a stop waits for the first job's
    submit to land instead of returning with it under way."""
    provider = HeldSubmits(db)
    core = build_core(db, clock, session, {"minimax": provider})
    first = await core.new_job(SPEC, user_id=1)
    second = await core.new_job(replace(SPEC, prompt="second"), user_id=2)
    worker = core.worker
    admit = worker.submitter.admit

    def failing_admit(job: Job, now: float) -> Any:
        if job.id == second.id:
            raise RuntimeError("a bug in the admission")
        return admit(job, now)

    worker.submitter.admit = failing_admit  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(provider.submitting.wait(), PATIENCE)
    finally:
        stop.set()
        worker.wake()
        provider.go.set()
        await asyncio.wait_for(loop, PATIENCE)
    # the stop waited for the first job's step: its submit is recorded
    assert (await core.jobs.get(first.id)).status is JobStatus.SUBMITTED  # type: ignore[union-attr]
    assert (await core.jobs.get(second.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]


async def test_inflight_a_cancelled_loop_gives_the_leases_of_its_steps_back(
    db: Database, session: Any, clock: FakeClock
) -> None:
    """Cancelled (a stop past its grace), the loop cancels the steps under way and gives
    their leases back at once: another process need not wait for them to lapse."""
    provider = HangingProvider(db)
    core = build_core(db, clock, session, {"minimax": provider})
    task = await submitted(core, 1)
    provider.hang = task
    await db_due_now(db, clock)
    loop = asyncio.create_task(core.worker.run(asyncio.Event()))
    await asyncio.wait_for(provider.hanging.wait(), PATIENCE)
    assert provider.queries[-1] == (task, core.worker.leases.holder)  # asked under a lease
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(loop, PATIENCE)
    assert {job.lease_holder for job in await core.jobs.open_jobs()} == {None}


async def db_due_now(db: Database, clock: FakeClock) -> None:
    """Every open job due now, whatever state the worker's last write left it in."""
    async with db.transaction() as tx:
        await tx.execute("UPDATE jobs SET next_poll_at = :now", {"now": clock()})
