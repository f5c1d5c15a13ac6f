"""The worker's schedule: only due jobs are read, each task is first asked near its learned
finish, a provider's callback replaces the polls, and a restart does not edit unchanged
cards. All on an injected clock, against a real SQLite file; no timing asserted."""

from __future__ import annotations

import math
import random
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hailuo.jobs.durations import DurationBook, Estimate, duration_key, prior_estimate
from hailuo.jobs.schedule import PollPlan
from hailuo.jobs.worker import QUEUE_CARDS_PER_CHANNEL
from hailuo.model.provider import Phase, PreparedInput, SubmitReceipt, TaskState
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage import grouping
from storage.db import Database
from storage.jobs_sql import RECORD_POLLS
from storage.leases import RELEASE_MANY
from storage.port import PollRecord
from tests.core import Core, build_core
from tests.pg_server import BOTH_ENGINES
from tests.support import FakeClock, RecordingNotifier

ENGINES = BOTH_ENGINES


class TimedProvider:
    """A provider stand-in whose tasks finish ``duration`` seconds after their submission."""

    name = "minimax"

    def __init__(self, clock: FakeClock, duration: float, progress: int | None = None) -> None:
        self.clock = clock
        self.duration = duration
        self.progress = progress
        self.finish: dict[str, float] = {}
        self.queries: list[tuple[str, float]] = []

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        task_id = f"t{len(self.finish)}"
        self.finish[task_id] = self.clock() + self.duration
        return SubmitReceipt(task_id)

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        now = self.clock()
        self.queries.append((task_id, now))
        if now >= self.finish[task_id]:
            return TaskState(Phase.SUCCEEDED, 100, locator="file")
        return TaskState(Phase.RUNNING, progress=self.progress)

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        raise NotImplementedError("not delivered here")


SPEC = JobSpec(mode=Mode.TEXT, prompt="a schedule test", resolution="1080P", duration=6)
KEY = duration_key(SPEC)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def core_for(
    db: Database,
    clock: FakeClock,
    session: aiohttp.ClientSession,
    provider: TimedProvider,
    notifier: RecordingNotifier | None = None,
) -> Core:
    providers: dict[str, Any] = {"minimax": provider}
    return build_core(db, clock, session, providers, notifier=notifier)


async def submitted(core: Core, spec: JobSpec = SPEC, user_id: int = 42) -> int:
    job = await core.new_job(spec, user_id=user_id)
    job = await core.run_until(job.id, JobStatus.SUBMITTED)
    return job.id


# -- the pure rule -----------------------------------------------------------------------------


def test_learned_duration_is_order_free_and_follows_recent_jobs() -> None:
    """A batch finishes shortest first; the estimate is the same whatever the order, and
    the window keeps only the most recent finishes (a provider that slows is followed)."""
    rng = random.Random(3)
    durations = [rng.uniform(102, 138) for _ in range(20)]
    ordered, shuffled = DurationBook(), DurationBook()
    for d in sorted(durations):
        ordered.learn(SPEC, d)
    for d in rng.sample(durations, len(durations)):
        shuffled.learn(SPEC, d)
    assert ordered.estimate(SPEC) == shuffled.estimate(SPEC)
    assert ordered.expected(SPEC) == shuffled.expected(SPEC)
    estimate = ordered.estimate(SPEC)
    assert 95 <= estimate.earliest <= 112 and 128 <= estimate.latest <= 145
    assert estimate.samples == 20
    for _ in range(20):
        ordered.learn(SPEC, 300.0)  # the provider slowed down
    assert ordered.estimate(SPEC).earliest > 290
    never = JobSpec(mode=Mode.TEXT, prompt="p", resolution="768P", duration=10)
    assert DurationBook().estimate(never) == prior_estimate(never)


def test_learned_duration_of_a_batch_keeps_its_latest_submitted_not_its_slowest() -> None:
    """Sixty jobs submitted together finish shortest first. A window of the last twenty
    to finish would be the slowest third (narrow and late: every query then came after
    the kind's latest finish); by submission it is a fair third, spread like the batch."""
    rng = random.Random(5)
    batch = [(job_id, rng.uniform(102, 138)) for job_id in range(1, 61)]
    by_submission, by_finish = DurationBook(), DurationBook()
    for job_id, seconds in sorted(batch, key=lambda run: run[1]):  # in finish order
        by_submission.learn(SPEC, seconds, (1000.0, job_id))
        by_finish.learn(SPEC, seconds)
    assert by_submission.recent(SPEC) == [seconds for job_id, seconds in batch[-20:]]
    assert by_finish.recent(SPEC) == sorted(seconds for _, seconds in batch)[-20:]
    fair, slowest = by_submission.estimate(SPEC), by_finish.estimate(SPEC)
    assert fair.earliest < 112 and fair.latest > 128  # the batch's spread
    assert slowest.earliest > 120  # the old window: its top third only

    # A run submitted before every run of a full window is not kept; one after them is.
    assert by_submission.learn(SPEC, 500.0, (999.0, 99)) is None
    assert by_submission.learn(SPEC, 130.0, (1001.0, 100)) is not None
    assert by_submission.recent(SPEC)[-1] == 130.0 and len(by_submission.recent(SPEC)) == 20


def test_learned_duration_read_back_gives_way_to_runs_learned_since() -> None:
    book = DurationBook()
    book.load({duration_key(SPEC): [200.0] * 20})
    for job_id in range(5):
        book.learn(SPEC, 120.0, (10.0, job_id))
    assert book.recent(SPEC) == [200.0] * 15 + [120.0] * 5


def test_learned_duration_one_sample_is_trusted_a_little() -> None:
    durations = DurationBook(pad=45.0)
    durations.learn(SPEC, 120.0)
    one = durations.estimate(SPEC)
    assert one.earliest == 75.0 and one.latest == 165.0
    for _ in range(9):
        durations.learn(SPEC, 120.0)
    ten = durations.estimate(SPEC)
    assert ten.earliest == 115.5 and ten.latest == 124.5


def test_schedule_first_query_near_the_expected_finish() -> None:
    plan = PollPlan(gap=18.0, lead=9.0, shortest=5.0)
    estimate = Estimate(102.0, 138.0, 20)
    firsts = [plan.first(estimate, dither=d) for d in (-1.0, 0.0, 1.0)]
    assert firsts == [102.0, 111.0, 120.0]
    # then one query every gap through the window, widening far beyond it
    assert plan.next(estimate, 60.0) == 42.0  # asked too early (a restart): wait for the window
    assert plan.next(estimate, 120.0) == 18.0
    assert plan.next(estimate, 1000.0) == 60.0
    # a kind so regular that its window is narrower than the lead: asked at its end
    assert plan.first(Estimate(60.0, 62.0, 20)) == 62.0


def test_schedule_callback_polls_are_a_slow_safety_net() -> None:
    plan = PollPlan(gap=18.0, lead=9.0, shortest=5.0, slowest=60.0, net_margin=30.0)
    estimate = Estimate(102.0, 138.0, 20)
    assert plan.first(estimate, called_back=True) == 168.0
    assert plan.next(estimate, 10.0, called_back=True) == 158.0
    assert plan.next(estimate, 200.0, called_back=True) == 60.0


# -- the worker ----------------------------------------------------------------------------------


@pytest.mark.sqlite_only
async def test_schedule_reads_only_due_jobs_in_due_order(db: Database, session: Any) -> None:
    clock = FakeClock()
    provider = TimedProvider(clock, 10_000.0)
    core = core_for(db, clock, session, provider)
    ids = [await submitted(core, user_id=n) for n in range(4)]
    now = clock()
    for offset, job_id in zip((30.0, -5.0, 60.0, -20.0), ids, strict=True):
        job = await core.jobs.get(job_id)
        assert job is not None
        await core.jobs.update(job, now, next_poll_at=now + offset)
    # The worker's own read (its lease claim): the due ones only, earliest first.
    assert [j.id for j in await core.worker.leases.claim_due(1, now)] == [ids[3]]
    due = await core.worker.leases.claim_due(10, now)
    assert [j.id for j in due] == [ids[3], ids[1]]
    await core.worker.leases.store.release_many([j.id for j in due], core.worker.leases.holder)
    assert await core.jobs.next_due(-math.inf) == now - 20.0

    provider.queries.clear()
    await core.worker.tick()
    tasks = {job.id: job.provider_task_id for job in await core.jobs.open_jobs()}
    assert sorted(t for t, _ in provider.queries) == sorted([tasks[ids[3]], tasks[ids[1]]])
    plan = await db.fetch_all(
        "EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE status IN ('submitted', 'running')"
        " AND next_poll_at <= 0 ORDER BY next_poll_at LIMIT 5"
    )
    assert any("jobs_poll_due" in str(tuple(row)) for row in plan)


async def test_schedule_first_query_near_the_learned_duration(db: Database, session: Any) -> None:
    """A kind learned at ~120 s: nothing is asked for the first ~100 s, the finish is seen
    within a gap, and the finish is learned (stored, so the next process knows it)."""
    clock = FakeClock()
    learned = [110.0 + n for n in range(20)]
    core = core_for(db, clock, session, TimedProvider(clock, 125.0))
    await core.jobs.put_duration(KEY, learned, clock())
    provider = TimedProvider(clock, 125.0)
    core = core_for(db, clock, session, provider)  # a fresh process loads what was learned
    job_id = await submitted(core)
    job = await core.jobs.get(job_id)
    assert job is not None and job.submitted_at is not None
    first = job.next_poll_at - job.submitted_at
    estimate = core.worker.durations.estimate(SPEC)
    assert estimate.samples == 20
    plan = core.worker.schedule.plan
    assert plan.regular(estimate)  # finishes within ~20 s: one query at the end of their gap
    assert plan.once(estimate) - plan.gap <= first <= plan.once(estimate)
    while clock() < job.next_poll_at - 1:
        await core.worker.tick()
        clock.advance(5)
    assert provider.queries == []
    done = await core.run_until(
        job_id, JobStatus.SUCCEEDED, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED
    )
    assert len(provider.queries) <= 3
    assert provider.queries[-1][1] - provider.finish["t0"] <= core.worker.schedule.plan.gap
    stored = (await core.jobs.durations())[KEY]
    assert len(stored) == 20 and stored[:-1] == learned[1:]  # the newest replaced the oldest
    assert done.status is not JobStatus.FAILED


async def test_schedule_callback_replaces_polls(db: Database, session: Any) -> None:
    clock = FakeClock()
    provider = TimedProvider(clock, 120.0)
    core = core_for(db, clock, session, provider)
    url = lambda name, job_id: f"https://bot.example/cb/{job_id}"  # noqa: E731
    core.worker.schedule.callback_url = url
    core.worker.submitter.callback_url = url
    job_id = await submitted(core)
    job = await core.jobs.get(job_id)
    assert job is not None and job.submitted_at is not None
    prior = core.worker.durations.estimate(SPEC)
    assert job.next_poll_at - job.submitted_at >= prior.latest  # only a safety net
    while clock() < job.submitted_at + 120.0:
        await core.worker.tick()
        clock.advance(5)
    assert provider.queries == []
    core.worker.poll_soon(job_id, "minimax")  # the provider called back
    await core.worker.drain()
    job = await core.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert len(provider.queries) == 1
    # a callback's finish is exact: learned as the task's duration
    assert job.submitted_at is not None
    assert core.worker.durations.recent(SPEC) == [clock() - job.submitted_at]


async def test_schedule_no_card_edit_after_a_restart_for_an_unchanged_card(
    db: Database, session: Any
) -> None:
    clock = FakeClock()
    notifier = RecordingNotifier()
    provider = TimedProvider(clock, 10_000.0, progress=40)
    core = core_for(db, clock, session, provider, notifier)
    job_id = await submitted(core)
    job = await core.jobs.get(job_id)
    assert job is not None
    clock.now = job.next_poll_at
    await core.worker.tick()
    job = await core.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.RUNNING
    assert notifier.states(job_id)[-1] == "running" and job.card_seen is not None
    shown = len(notifier.statuses)

    # a restart: a new core (empty card cache) on the same database; the task is unchanged
    notifier2 = RecordingNotifier()
    core2 = core_for(db, clock, session, provider, notifier2)
    clock.now = job.next_poll_at
    await core2.worker.tick()
    assert len(provider.queries) == 2  # it was asked ...
    assert notifier2.statuses == []  # ... and its card, unchanged, was not edited
    assert len(notifier.statuses) == shown

    provider.progress = 70  # a real change is still shown
    job = await core2.jobs.get(job_id)
    assert job is not None
    clock.now = job.next_poll_at + core2.worker.config.status_edit_interval
    await core2.worker.tick()
    assert [v.job.progress for v in notifier2.statuses] == [70]


async def test_schedule_queue_cards_only_for_the_first_of_a_channel(
    db: Database, session: Any
) -> None:
    """Queued jobs beyond the first few of a channel get no position edits at each tick."""
    clock = FakeClock()
    notifier = RecordingNotifier()
    core = core_for(db, clock, session, TimedProvider(clock, 60.0), notifier)
    core.worker.submitter.admit = lambda job, now: None  # type: ignore[method-assign]
    ids = [(await core.new_job(SPEC, user_id=n)).id for n in range(QUEUE_CARDS_PER_CHANNEL + 4)]
    notifier.statuses.clear()
    await core.worker.tick()
    edited = {view.job.id for view in notifier.statuses}
    assert edited == set(ids[:QUEUE_CARDS_PER_CHANNEL])
    notifier.statuses.clear()
    clock.advance(60)
    await core.worker.tick()
    assert {view.job.id for view in notifier.statuses} <= set(ids[:QUEUE_CARDS_PER_CHANNEL])


# -- one learned duration: the first query and the card's ETA --------------------------------


async def test_eta_and_first_query_share_one_learned_duration(db: Database, session: Any) -> None:
    """The card's ETA and the first status query come from the same book: what a poll
    learns moves both, and a fresh process reads it back for both."""
    clock = FakeClock()
    notifier = RecordingNotifier()
    provider = TimedProvider(clock, 200.0)
    core = core_for(db, clock, session, provider, notifier)
    assert core.worker.cards.durations is core.worker.durations
    assert core.worker.schedule.durations is core.worker.durations
    first_id = await submitted(core)
    first = await core.jobs.get(first_id)
    assert first is not None and first.submitted_at is not None
    # never measured: the card shows the prior, the query waits for the prior's window
    shown = [v for v in notifier.statuses if v.job.id == first_id and v.done_at is not None]
    assert shown[-1].done_at == first.submitted_at + prior_estimate(SPEC).latest
    assert first.next_poll_at - first.submitted_at >= prior_estimate(SPEC).earliest
    await core.run_until(first_id, JobStatus.SUCCEEDED, JobStatus.DELIVERED)
    learned = core.worker.durations.recent(SPEC)
    assert len(learned) == 1 and 180.0 <= learned[0] <= 200.0  # seen within a gap

    # a fresh process: the stored sample is its card's ETA and its first query's window
    notifier2 = RecordingNotifier()
    core2 = core_for(db, clock, session, provider, notifier2)
    second_id = await submitted(core2, user_id=43)
    second = await core2.jobs.get(second_id)
    assert second is not None and second.submitted_at is not None
    assert core2.worker.durations.recent(SPEC) == learned
    shown = [v for v in notifier2.statuses if v.job.id == second_id and v.done_at is not None]
    assert shown[-1].done_at == second.submitted_at + learned[0]
    estimate = core2.worker.durations.estimate(SPEC)
    assert estimate.earliest < learned[0] < estimate.latest
    wait = second.next_poll_at - second.submitted_at
    assert estimate.earliest - core2.worker.schedule.plan.lead <= wait <= estimate.latest


def test_eta_book_merges_provider_keyed_durations_and_seeds_only_unknown_kinds() -> None:
    """Durations an older version stored per provider x kind become the kind's; delivered
    jobs' run times fill only kinds nothing was stored for; implausible values are dropped."""
    other = JobSpec(mode=Mode.TEXT, prompt="p", resolution="768P", duration=10)
    book = DurationBook()
    book.load(
        {
            f"minimax|{KEY}": [100.0, 110.0],
            f"freepik|{KEY}": [120.0],
            KEY: [130.0, 99999.0],
        }
    )
    assert sorted(book.recent(SPEC)) == [100.0, 110.0, 120.0, 130.0]
    book.seed([(SPEC, 500.0), (other, 250.0), (other, 270.0), (other, 0.1)])
    assert 500.0 not in book.recent(SPEC)  # stored kinds keep their own samples
    assert book.recent(other) == [250.0, 270.0]
    assert book.expected(other) == 260.0  # the card's ETA: the median
    assert book.estimate(other).samples == 2


async def test_schedule_polls_that_change_nothing_are_written_in_groups(
    db: Database, session: Any
) -> None:
    """Polls finding their task still running are written a group per transaction, each
    guarded by the state it was read in (a job moved meanwhile is left as it is)."""
    clock = FakeClock()
    provider = TimedProvider(clock, 10_000.0, progress=30)
    core = core_for(db, clock, session, provider)
    ids = [await submitted(core, user_id=n) for n in range(20)]
    for job_id in ids:
        job = await core.jobs.get(job_id)
        assert job is not None
        await core.jobs.update(job, clock(), next_poll_at=clock() - 1)
    before = {j.id: j for j in await core.jobs.open_jobs()}
    groups: list[int] = []
    record = core.jobs.record_polls

    async def counting(records: Any) -> set[int]:
        groups.append(len(records))
        return await record(records)

    core.worker.follower.writes.write = counting
    await core.worker.tick()
    assert sum(groups) == len(before)  # every poll, its move to running among them
    assert len(groups) < sum(groups)  # fewer transactions than polls
    for job in await core.jobs.open_jobs():
        assert job.status is JobStatus.RUNNING
        assert job.polls == before[job.id].polls + 1 and job.next_poll_at > clock()
        assert job.progress == 30 and job.updated_at == clock()

    # guarded: a record of a state the job is no longer in writes nothing
    job = before[ids[0]]
    fresh = await core.jobs.get(job.id)
    assert fresh is not None and fresh.status is JobStatus.RUNNING
    stale = PollRecord(job.id, "submitted", "running", 99, clock() + 1, None, clock())
    assert await record([stale]) == set()
    unchanged = await core.jobs.get(job.id)
    assert unchanged is not None and unchanged.polls == fresh.polls
    kept = PollRecord(
        job.id, fresh.status.value, fresh.status.value, fresh.polls + 1, clock() + 9, None, clock()
    )
    assert await record([kept]) == {job.id}
    after = await core.jobs.get(job.id)
    assert after is not None and after.progress == fresh.progress  # None keeps the progress


async def test_schedule_batch_writes_of_a_round_run_off_the_loop(
    tmp_path: Path, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round's claims, its polls' writes and its leases given back touch a row per job
    (10,000 after a restart): their statements run on aiosqlite's thread (``bulk``), so
    the loop goes on with the replies meanwhile; the writes are the same."""
    db = await Database.open(tmp_path / "bulk.sqlite3")
    try:
        clock = FakeClock()
        core = core_for(db, clock, session, TimedProvider(clock, 10_000.0, progress=30))
        ids = [await submitted(core, user_id=n) for n in range(12)]
        for job_id in ids:
            job = await core.jobs.get(job_id)
            assert job is not None
            await core.jobs.update(job, clock(), next_poll_at=clock() - 1)
        before = {job.id: job.polls for job in await core.jobs.open_jobs()}
        ran: list[tuple[str, int]] = []  # (statement, thread) of every unit's statement
        real = grouping.in_unit

        def noted(conn: sqlite3.Connection, unit: grouping.Unit, work: Any, *args: Any) -> Any:
            ran.append((str(args[0]) if args else "", threading.get_ident()))
            return real(conn, unit, work, *args)

        monkeypatch.setattr(grouping, "in_unit", noted)
        await core.worker.tick()
        await core.worker.drain()
        loop_thread = threading.get_ident()
        bulk = {
            "claims": [t for sql, t in ran if "WHERE id IN (SELECT id FROM jobs WHERE" in sql],
            "polls": [t for sql, t in ran if sql == RECORD_POLLS],
            "released": [t for sql, t in ran if sql.startswith(RELEASE_MANY.split("{")[0])],
        }
        assert all(bulk.values()), bulk  # each kind of write ran
        assert all(t != loop_thread for threads in bulk.values() for t in threads)
        for job in await core.jobs.open_jobs():  # and did what it does
            assert job.status is JobStatus.RUNNING and job.polls == before[job.id] + 1
            assert job.lease_holder is None
    finally:
        await db.close()


async def test_schedule_card_redrawn_after_its_first_answer_replaced_the_worker_edit(
    db: Database, session: Any
) -> None:
    """A tick that showed a job before its card was attached (or filled in by its first
    answer) draws it again at the next look, once; a job never shown is left alone."""
    clock = FakeClock()
    notifier = RecordingNotifier()
    core = core_for(db, clock, session, TimedProvider(clock, 10_000.0), notifier)
    job_id = await submitted(core)
    job = await core.jobs.get(job_id)
    assert job is not None
    cards = core.worker.cards
    await cards.show(job)
    await cards.show(job)
    shown = len(notifier.statuses)
    assert notifier.states(job_id)[-1] == "submitted"  # unchanged: one edit, not two
    cards.stale(job_id)
    await cards.show(job)
    assert len(notifier.statuses) == shown + 1  # drawn over: shown again, though unchanged
    await cards.show(job)
    assert len(notifier.statuses) == shown + 1
    cards.stale(job_id + 1000)  # never shown: nothing to draw again
    await cards.show(job)
    assert len(notifier.statuses) == shown + 1
