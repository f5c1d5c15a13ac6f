"""A regular kind (its finishes within about one gap) is asked once, at the end of that gap;
a few of its jobs earlier; what its one query sees keeps the learned window's spread.
On an injected clock, against a real SQLite file; no timing asserted."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hailuo.jobs.durations import DurationBook, Estimate
from hailuo.jobs.schedule import PollPlan
from hailuo.model.status import JobStatus
from storage.db import Database
from tests.support import FakeClock
from tests.test_schedule import KEY, SPEC, TimedProvider, core_for, session, submitted

__all__ = ["session"]  # the fixture, used by the worker test below


def test_schedule_regular_kind_is_asked_once_at_the_end_of_its_gap() -> None:
    plan = PollPlan(gap=18.0, lead=9.0, shortest=5.0)
    regular = Estimate(48.0, 72.0, 20)  # learned finishes 51-69 s, blurred by the polls
    assert plan.regular(regular)
    assert plan.once(regular) == 69.0  # half a gap after the middle
    assert plan.first(regular, dither=0.7) == 69.0  # no dither: the one query is placed
    # an exploring job is asked earlier, by up to a gap, then at the one query's time
    assert plan.first(regular, dither=-0.5, explore=True) == 60.0
    assert plan.next(regular, 60.0) == 9.0
    # a finish later than usual: short follow-ups through the window and a gap beyond
    assert plan.next(regular, 69.0) == 9.0
    assert plan.next(regular, 91.0) == 18.0
    # a window narrower than half a gap each side of its middle: asked at its end
    assert plan.first(Estimate(60.0, 62.0, 20)) == 62.0
    # a wide window, or the prior (never measured), keeps the dithered pace through it
    assert not plan.regular(Estimate(102.0, 138.0, 20))
    assert not plan.regular(Estimate(30.0, 50.0, 0))
    assert plan.first(Estimate(102.0, 138.0, 20), dither=1.0) == 120.0


def test_schedule_explore_half_as_often_when_one_query_is_over_budget() -> None:
    """Exploring costs a second query when the early one finds the task running: a kind whose
    budget is under one call (its one query alone spends more) explores one job in twenty,
    a longer regular kind one in ten."""
    plan = PollPlan(gap=18.0, lead=9.0, shortest=5.0)
    short = Estimate(48.0, 72.0, 20)  # a 60 s kind: a quarter of a 20 s poll's 3.5 calls
    assert plan.budget(short) < 1.0 and plan.regular(short)
    assert plan.exploring(short) == plan.explore / 2
    longer = Estimate(110.0, 130.0, 20)  # a 120 s kind this regular: 1.6 calls to spend
    assert plan.budget(longer) >= 1.0 and plan.regular(longer)
    assert plan.exploring(longer) == plan.explore


async def test_schedule_explore_share_is_what_the_worker_draws(db: Database, session: Any) -> None:
    """The worker's first query of a 60 s kind's job (``TaskSchedule.first_poll``) comes
    early for about one job in twenty."""
    clock = FakeClock()
    provider = TimedProvider(clock, 63.0)
    core = core_for(db, clock, session, provider)
    await core.jobs.put_duration(KEY, [51.0 + 18.0 * n / 19 for n in range(20)], clock())
    core = core_for(db, clock, session, provider)  # a fresh process loads what was learned
    schedule = core.worker.schedule
    schedule.rng = random.Random(3)
    job = await core.jobs.get(await submitted(core))
    assert job is not None
    estimate = schedule.estimate(job)
    assert schedule.plan.regular(estimate) and schedule.plan.budget(estimate) < 1.0
    once = schedule.plan.once(estimate)
    early = sum(schedule.first_poll("minimax", job, False) < once for _ in range(4000))
    assert 140 <= early <= 260  # about 200 of 4,000 (one in ten would be about 400)


def follow(plan: PollPlan, book: DurationBook, took: float, rng: random.Random) -> list[float]:
    """One task that takes ``took`` seconds, asked as the plan says from the book's window
    (as the worker does); its finish learned as ``TaskSchedule.learn`` does. The query times."""
    estimate = book.estimate(SPEC)
    asked = [plan.drawn_first(estimate, rng)]
    while asked[-1] < took:
        asked.append(asked[-1] + plan.next(estimate, asked[-1]))
    previous = asked[-2] if len(asked) > 1 else 0.0
    book.learn(SPEC, plan.seen(estimate, previous, asked[-1], rng.random()))
    return asked


def test_schedule_one_query_learning_stays_at_the_end_of_the_finishes() -> None:
    """Job after job of a regular kind (51-69 s) mostly seen at its one query: what is
    learned keeps the window's spread and its one query near the finishes' end (misses
    push it later, the exploring jobs earlier), for one call and ~9 s of lag a job."""
    plan = PollPlan(gap=18.0, lead=9.0, shortest=5.0)
    rng = random.Random(5)
    book = DurationBook()
    for _ in range(20):
        book.learn(SPEC, rng.uniform(51.0, 69.0))
    calls: list[int] = []
    lags: list[float] = []
    onces: list[float] = []
    regular = 0
    for _ in range(400):  # twenty windows' worth of jobs
        took = rng.uniform(51.0, 69.0)
        asked = follow(plan, book, took, rng)
        calls.append(len(asked))
        lags.append(asked[-1] - took)
        onces.append(plan.once(book.estimate(SPEC)))
        regular += plan.regular(book.estimate(SPEC))
    # an exploring job's early find may widen the window a while; it comes back
    assert regular >= 0.75 * len(calls)
    assert min(onces[100:]) >= 60.0 and max(onces[100:]) <= 76.0
    assert sum(calls) / len(calls) <= 1.3  # a 20 s poll: 3.5 calls for these finishes
    assert sum(lags) / len(lags) <= 10.0


def test_schedule_one_query_learning_follows_a_faster_provider() -> None:
    """The provider becomes faster (51-69 s to 31-49 s): the exploring jobs' early queries
    see it, and the one query moves to the new finishes' end."""
    plan = PollPlan(gap=18.0, lead=9.0, shortest=5.0)
    rng = random.Random(11)
    book = DurationBook()
    for _ in range(20):
        book.learn(SPEC, rng.uniform(51.0, 69.0))
    for _ in range(400):
        follow(plan, book, rng.uniform(31.0, 49.0), rng)
    assert plan.regular(book.estimate(SPEC))
    assert 44.0 <= plan.once(book.estimate(SPEC)) <= 56.0


async def test_schedule_regular_kind_one_status_query(db: Database, session: Any) -> None:
    """A kind learned at 51-69 s, a task that takes 63 s: the worker asks nothing before
    the end of the gap, asks once and sees the finish, and learns it within that gap."""
    clock = FakeClock()
    rng = random.Random(7)
    learned = [51.0 + 18.0 * n / 19 for n in range(20)]
    provider = TimedProvider(clock, 63.0)
    core = core_for(db, clock, session, provider)
    await core.jobs.put_duration(KEY, learned, clock())
    core = core_for(db, clock, session, provider)  # a fresh process loads what was learned
    schedule = core.worker.schedule
    schedule.plan = replace(schedule.plan, explore=0.0)  # this job does not explore
    schedule.rng = rng
    job_id = await submitted(core)
    job = await core.jobs.get(job_id)
    assert job is not None and job.submitted_at is not None
    estimate = schedule.estimate(job)
    assert schedule.plan.regular(estimate)
    assert job.next_poll_at - job.submitted_at == schedule.plan.once(estimate)
    done = await core.run_until(job_id, JobStatus.SUCCEEDED, JobStatus.DELIVERED, steps=40)
    assert done.status in (JobStatus.SUCCEEDED, JobStatus.DELIVERED)
    assert len(provider.queries) == 1  # one status call for the whole task
    seen = provider.queries[0][1] - job.submitted_at
    assert 0 <= seen - 63.0 <= schedule.plan.gap / 2 + 5  # a tick is 5 s here
    newest = (await core.jobs.durations())[KEY][-1]
    # somewhere in the gap before the query, or back to the window's start
    assert min(seen - schedule.plan.gap, estimate.earliest) <= newest <= seen
