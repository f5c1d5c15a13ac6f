"""Each provider's status-query budget: never exceeded, nothing dropped, due order kept.

On an injected clock against a real SQLite file; no timing asserted. The budget comes
from the owner's setting, else the provider's documented figure, else the default."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hailuo.jobs.budget import DEFAULT_PER_SECOND, StatusBudget, StatusBudgets, resolve
from hailuo.model.status import JobStatus
from hailuo.settings import SettingsError, load_settings
from providers.registry import TABLE
from storage.db import Database
from tests.core import Core
from tests.support import FakeClock
from tests.test_schedule import TimedProvider, core_for, submitted


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# -- the rule ------------------------------------------------------------------------------------


def test_status_budget_is_a_bucket_on_the_injected_clock() -> None:
    budget = StatusBudget(4.0, now=100.0)
    assert [budget.take(100.0) for _ in range(5)] == [True] * 4 + [False]
    assert budget.ready_in(100.0) == pytest.approx(0.25)
    assert budget.take(100.2) is False  # 0.8 of a query has come back
    assert budget.take(100.25) is True
    # a long pause fills it up to one second's worth, never more
    assert sum(budget.take(200.0) for _ in range(10)) == 4
    slow = StatusBudget(0.5, now=0.0)
    assert slow.take(0.0) and not slow.take(1.0) and slow.take(2.0)
    free = StatusBudget(math.inf, now=0.0)
    assert all(free.take(0.0) for _ in range(10_000)) and free.ready_in(0.0) == 0.0


def test_status_budget_comes_from_the_setting_then_the_capability_then_the_default() -> None:
    assert TABLE["freepik"].status_per_second == 10.0  # providers.md "Limits"
    assert TABLE["minimax"].status_per_second is None  # undocumented
    assert resolve(3.0, 10.0) == 3.0
    assert resolve(None, 10.0) == 10.0
    assert resolve(None, None) == DEFAULT_PER_SECOND
    # a faster pace (tests, simulators) widens a documented or default budget, not the owner's
    assert resolve(None, 10.0, pace=100.0) == 1000.0 and resolve(3.0, 10.0, pace=100.0) == 3.0
    budgets = StatusBudgets({"freepik": 10.0}, now=0.0, default=20.0)
    assert budgets.budget("novita").per_second == 20.0
    for _ in range(10):
        assert budgets.take("freepik", 0.0)
    assert list(budgets.spent(0.0)) == ["freepik"]
    assert budgets.ready_in(0.0, ["freepik"]) == pytest.approx(0.1)


def test_status_budget_setting_is_parsed_and_a_bad_one_is_one_sentence() -> None:
    base = {"DISCORD_TOKEN": "t", "MINIMAX_API_KEY": "k"}
    settings = load_settings(environ={**base, "MINIMAX_STATUS_PER_SECOND": "2.5"}, dotenv_path=None)
    assert settings.providers[0].status_per_second == 2.5
    unset = load_settings(environ=base, dotenv_path=None)
    assert unset.providers[0].status_per_second is None
    for bad in ("0", "-1", "fast", "inf"):
        with pytest.raises(SettingsError) as caught:
            load_settings(environ={**base, "MINIMAX_STATUS_PER_SECOND": bad}, dotenv_path=None)
        message = str(caught.value)
        assert "MINIMAX_STATUS_PER_SECOND" in message and message.endswith(".")
        assert "\n" not in message


# -- the worker ----------------------------------------------------------------------------------


async def many_due(core: Core, clock: FakeClock, count: int) -> list[int]:
    """``count`` submitted jobs, each due at its own past moment (id order = due order)."""
    ids = [await submitted(core, user_id=n) for n in range(count)]
    now = clock()
    for n, job_id in enumerate(ids):
        job = await core.jobs.get(job_id)
        assert job is not None
        await core.jobs.update(job, now, next_poll_at=now - 100 + n)
    return ids


def asked(provider: TimedProvider, core_tasks: dict[int, str], ids: list[int]) -> list[int]:
    by_task = {task: job_id for job_id, task in core_tasks.items()}
    return [by_task[task] for task, _ in provider.queries if by_task.get(task) in ids]


async def tasks_of(core: Core) -> dict[int, str]:
    return {j.id: j.provider_task_id or "" for j in await core.jobs.open_jobs()}


async def test_status_budget_holds_queries_in_due_order_and_drops_none(
    db: Database, session: Any
) -> None:
    clock = FakeClock()
    provider = TimedProvider(clock, 10_000.0)
    core = core_for(db, clock, session, provider)
    core.worker.budgets = StatusBudgets({"minimax": 10.0}, clock())
    ids = await many_due(core, clock, 25)
    tasks = await tasks_of(core)
    before = {j.id: j.polls for j in await core.jobs.open_jobs()}
    provider.queries.clear()
    await core.worker.tick()
    await core.worker.tick()  # the budget is spent: a second tick at once asks nothing
    assert asked(provider, tasks, ids) == ids[:10]  # the ten due first
    held = await core.jobs.get(ids[10])
    assert held is not None and held.next_poll_at <= clock() and held.polls == before[held.id]
    clock.advance(0.5)  # half a second: five more queries
    await core.worker.tick()
    assert asked(provider, tasks, ids) == ids[:15]
    for _ in range(3):
        clock.advance(1.0)
        await core.worker.tick()
    assert asked(provider, tasks, ids) == ids  # every one asked once, in due order
    times = [t for _, t in provider.queries]
    for start in times:  # never more than the budget allows in any span
        span = [t for t in times if start <= t < start + 1.0]
        assert len(span) <= 10 * (1.0 + 1.0)
    assert all(j.polls == before[j.id] + 1 for j in await core.jobs.open_jobs())


async def test_status_budget_of_one_provider_does_not_hold_back_another(
    db: Database, session: Any
) -> None:
    clock = FakeClock()
    minimax = TimedProvider(clock, 10_000.0)
    core = core_for(db, clock, session, minimax)
    ids = await many_due(core, clock, 12)
    # the last two jobs' tasks are at a second provider (due after all of minimax's)
    novita = TimedProvider(clock, 10_000.0)
    novita.finish = minimax.finish
    core.worker.providers["novita"] = novita
    core.worker.follower.providers["novita"] = novita
    for job_id in ids[10:]:
        job = await core.jobs.get(job_id)
        assert job is not None
        await core.jobs.update(job, clock(), provider="novita")
    core.worker.budgets = StatusBudgets({"minimax": 2.0, "novita": 5.0}, clock())
    tasks = await tasks_of(core)
    minimax.queries.clear()
    await core.worker.tick()
    await core.worker.tick()
    assert asked(minimax, tasks, ids) == ids[:2]
    assert asked(novita, tasks, ids) == ids[10:]  # not stuck behind minimax's backlog


async def test_status_budget_a_callback_over_budget_is_asked_later_not_dropped(
    db: Database, session: Any
) -> None:
    clock = FakeClock()
    provider = TimedProvider(clock, 60.0)
    core = core_for(db, clock, session, provider)
    job_id = await submitted(core)
    core.worker.budgets = StatusBudgets({"minimax": 1.0}, clock())
    assert core.worker.budgets.take("minimax", clock())  # spent by another query
    clock.advance(61)
    clock_then = clock()
    core.worker.budgets.budget("minimax").take(clock_then)  # and spent again now
    provider.queries.clear()
    core.worker.poll_soon(job_id, "minimax")  # the provider called back: over budget
    await core.worker.drain()
    assert provider.queries == []
    job = await core.jobs.get(job_id)
    assert job is not None and job.next_poll_at <= clock_then  # due now, in due order
    clock.advance(1.0)
    await core.worker.tick()
    job = await core.jobs.get(job_id)
    assert len(provider.queries) == 1
    assert job is not None and job.status in (JobStatus.SUCCEEDED, JobStatus.DELIVERED)
