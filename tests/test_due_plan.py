"""Due times a provider's status budget can honour (``jobs.due_plan``).

Tasks submitted together fall due together at every round; a budget serves them over
seconds. The plan books each next query in a slot the budget can serve, never earlier
than the schedule wished and unchanged while the budget has room, so every query
starts within a second of its planned time. On an injected clock against a real
SQLite file; no timing asserted."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hailuo.jobs.budget import StatusBudgets
from hailuo.jobs.due_plan import FORGET_EVERY, DuePlan
from hailuo.model.provider import Phase, TaskState
from storage.db import Database
from tests.support import FakeClock
from tests.test_schedule import TimedProvider, core_for
from tests.test_status_budget import asked, many_due, tasks_of


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def per_slot(times: list[float], width: float) -> dict[int, int]:
    counts: dict[int, int] = {}
    for t in times:
        counts[math.floor(t / width)] = counts.get(math.floor(t / width), 0) + 1
    return counts


def test_due_plan_moves_nothing_while_the_budget_has_room() -> None:
    plan = DuePlan(lambda provider: 100.0)
    assert [plan.book("minimax", 50.0 + n * 0.01, 40.0) for n in range(25)] == [
        50.0 + n * 0.01 for n in range(25)
    ]
    unlimited = DuePlan(lambda provider: math.inf)
    assert {unlimited.book("minimax", 7.0, 0.0) for _ in range(10_000)} == {7.0}


def test_due_plan_spreads_a_storm_over_what_the_budget_serves() -> None:
    plan = DuePlan(lambda provider: {"minimax": 100.0, "freepik": 2.0}[provider])
    storm = [plan.book("minimax", 100.0, 80.0) for _ in range(10_000)]
    assert storm[:25] == [100.0] * 25  # the first slot (a quarter second) has room for 25
    assert all(t >= 100.0 for t in storm)  # never earlier than wished
    assert storm == sorted(storm)  # the first booked is the first asked
    assert max(per_slot(storm, 0.25).values()) <= 25  # never more than the budget's worth
    assert max(storm) < 100.0 + 10_000 / 100.0  # and no later than the budget needs
    # another provider's budget is its own; a slow one plans one query per 1 / rate
    assert [plan.book("freepik", 100.0, 80.0) for _ in range(4)] == [100.0, 100.5, 101.0, 101.5]
    # a wish after the storm's end is as wished; one inside it takes the next free slot
    assert plan.book("minimax", 300.0, 80.0) == 300.0
    assert plan.book("minimax", 150.0, 80.0) >= max(storm)


def test_due_plan_forgets_the_slots_that_are_past() -> None:
    plan = DuePlan(lambda provider: 4.0)
    for n in range(FORGET_EVERY * 4):
        plan.book("minimax", n + 5.0, float(n))  # one wish a second, five seconds ahead
    assert plan.booked("minimax", 0.0, FORGET_EVERY * 3.0) == 0  # past: forgotten
    assert plan.booked("minimax", FORGET_EVERY * 4.0 - 1, FORGET_EVERY * 4.0 + 5) == 6


@pytest.mark.parametrize("planned", [True, False], ids=["planned", "as_wished"])
async def test_due_plan_a_restart_storm_is_asked_on_its_planned_time(
    db: Database, session: Any, planned: bool
) -> None:
    """30 tasks submitted together, found due after a restart, under 3 queries a second:
    asked once (recovery), they all wish their next query at the same moment (their
    kind's first plausible finish); each one is asked within a second of its planned
    time. The same storm planned as wished (no plan) runs up to ten seconds late."""
    clock = FakeClock()
    provider = TimedProvider(clock, 10_000.0)
    core = core_for(db, clock, session, provider)
    core.worker.budgets = StatusBudgets({"minimax": 3.0}, clock())
    if not planned:
        core.worker.schedule.due = None
    ids = await many_due(core, clock, 30)
    for job in await core.jobs.open_jobs():  # submitted together, a moment ago
        await core.jobs.update(job, clock(), submitted_at=clock())
    tasks = await tasks_of(core)
    provider.queries.clear()
    metrics = core.worker.metrics
    while len(asked(provider, tasks, ids)) < len(ids):  # recovery: each asked once
        await core.worker.tick()
        clock.advance(0.1)
    marked = metrics.lateness_counts()
    planned_at = {j.id: j.next_poll_at for j in await core.jobs.open_jobs()}
    while len(asked(provider, tasks, ids)) < 2 * len(ids):
        await core.worker.tick()
        clock.advance(0.1)
    late = metrics.lateness_counts()
    scheduled = late[math.inf] - marked[math.inf]
    within_1s = late[1.0] - marked[1.0]
    assert scheduled == len(ids)
    times = [t for _, t in provider.queries]
    for start in times:  # the budget holds either way
        assert len([t for t in times if start <= t < start + 1.0]) <= 3 * (1.0 + 1.0)
    if planned:
        assert within_1s == scheduled  # every one on its plan
        assert len(set(planned_at.values())) == len(ids)  # one slot each at 3 a second
    else:
        assert within_1s < scheduled  # the budget could not keep the wished times


async def test_due_plan_a_finished_task_books_no_query(db: Database, session: Any) -> None:
    """Only a task still running is asked again: an answer that the task succeeded (or
    failed) books no slot of the budget, a running one books one."""
    clock = FakeClock()
    core = core_for(db, clock, session, TimedProvider(clock, 10_000.0))
    core.worker.budgets = StatusBudgets({"minimax": 3.0}, clock())
    plan = core.worker.schedule.due
    assert plan is not None
    ids = await many_due(core, clock, 3)
    jobs = {job.id: job for job in await core.jobs.open_jobs()}
    running, done, failed = (jobs[i] for i in ids)

    def booked() -> int:
        return plan.booked("minimax", 0.0, clock() + 10**7)

    before = booked()
    await core.worker.apply_state(done, TaskState(Phase.SUCCEEDED, locator="file-1"))
    await core.worker.apply_state(failed, TaskState(Phase.FAILED))
    assert booked() == before
    await core.worker.apply_state(running, TaskState(Phase.RUNNING))
    assert booked() == before + 1
