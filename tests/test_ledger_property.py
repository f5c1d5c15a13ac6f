"""Stateful property test of the ledger on a real SQLite file, and on a real PostgreSQL server.

Hypothesis drives any sequence of reservations (job creation), charges (delivery, or a
stop after the provider took the job), refunds (failure, cancel before submission),
grants, take-backs, resets and the clock crossing into new days. After every step,
every member's balance in every period must equal their allowance plus the sum of
their ledger entries there, never fall below zero, and the credits held must be
exactly the costs of the jobs still open; the running balances (migration 009) must
equal the ledger's sums. The ledger only ever grows.

The storage calls are async; the machine drives them through one ``asyncio.Runner``
of its own, so the whole example shares one event loop and one connection.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hailuo.jobs.desk import JobDesk, JobRequest
from hailuo.model.errors import QuotaExceeded, UserInputError
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy, current_period
from storage.db import Database
from storage.postgres import PostgresDatabase
from tests.pg_server import PgServer
from tests.support import FakeClock
from tests.test_running_balances import assert_running_balances_match

T = TypeVar("T")
GUILD = 1
ALLOWANCE = 6
MEMBERS = (11, 12)
SPECS = {
    1: JobSpec(mode=Mode.TEXT, prompt="x"),
    2: JobSpec(mode=Mode.TEXT, prompt="x", resolution="1080P"),
}
CHARGE_PATH = (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.DELIVERED)

SUM_BY_PERIOD = """
SELECT user_id, period, SUM(delta) AS total FROM ledger WHERE guild_id = :guild
GROUP BY user_id, period
"""


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.folder = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.db: Database | None = None
        self.open: dict[int, Job] = {}  # the model: jobs not settled yet
        self.rows = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    async def open_storage(self) -> Database:
        return await Database.open(Path(self.folder.name) / "ledger.sqlite3")

    @initialize()
    def open_database(self) -> None:
        self.db = self.run(self.open_storage())
        policy = QuotaPolicy(daily_credits=ALLOWANCE, max_jobs_per_member=100)

        async def policy_for(_: int) -> QuotaPolicy:
            return policy

        self.desk = JobDesk(self.db, clock=self.clock, policy=policy_for, on_created=lambda: None)

    def teardown(self) -> None:
        if self.db is not None:
            self.run(self.db.close())
        self.runner.close()
        self.folder.cleanup()

    # -- steps ------------------------------------------------------------------------------

    @rule(member=st.sampled_from(MEMBERS), cost=st.sampled_from(sorted(SPECS)))
    def reserve(self, member: int, cost: int) -> None:
        before = self.run(self.desk.balance(GUILD, member)).remaining
        try:
            job = self.run(self.desk.create(JobRequest(GUILD, 2, member, SPECS[cost])))
        except QuotaExceeded as refused:
            assert refused.rule == "quota.credits" and cost > before
            return
        assert cost <= before and job.cost == cost
        self.open[job.id] = job

    @precondition(lambda self: self.open)
    @rule(data=st.data(), stop_after_acceptance=st.booleans())
    def charge(self, data: st.DataObject, stop_after_acceptance: bool) -> None:
        job = self.open.pop(data.draw(st.sampled_from(sorted(self.open))))
        path = (*CHARGE_PATH[:2], JobStatus.CANCELLED) if stop_after_acceptance else CHARGE_PATH
        for status in path:
            job = self.run(self.desk.jobs.transition(job, status, self.clock()))

    @precondition(lambda self: self.open)
    @rule(data=st.data(), how=st.sampled_from(["failed", "cancelled", "interrupted"]))
    def refund(self, data: st.DataObject, how: str) -> None:
        job = self.open.pop(data.draw(st.sampled_from(sorted(self.open))))
        if how == "interrupted":
            job = self.run(self.desk.jobs.transition(job, JobStatus.SUBMITTING, self.clock()))
        status = JobStatus.CANCELLED if how == "cancelled" else JobStatus.FAILED
        self.run(self.desk.jobs.transition(job, status, self.clock(), reason=how))

    @rule(member=st.sampled_from(MEMBERS), amount=st.integers(-10, 10).filter(bool))
    def grant(self, member: int, amount: int) -> None:
        before = self.run(self.desk.balance(GUILD, member)).remaining
        try:
            after = self.run(self.desk.grant(GUILD, member, amount, actor_id=1))
        except UserInputError as refused:
            assert refused.rule == "admin.take_too_many" and -amount > before
            return
        assert after.remaining == before + amount

    @rule(member=st.sampled_from(MEMBERS))
    def reset(self, member: int) -> None:
        after = self.run(self.desk.reset(GUILD, member, actor_id=1))
        assert after.remaining == max(0, ALLOWANCE - after.reserved)

    @rule(hours=st.sampled_from([1, 6, 24]))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours * 3600)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def balances_are_sums_of_entries_and_never_negative(self) -> None:
        if self.db is None:
            return
        rows = self.run(self.db.fetch_all(SUM_BY_PERIOD, {"guild": GUILD}))
        totals = {(r["user_id"], r["period"]): int(r["total"]) for r in rows}
        for total in totals.values():
            assert ALLOWANCE + total >= 0
        today = current_period(self.clock()).key
        for member in MEMBERS:
            balance = self.run(self.desk.balance(GUILD, member))
            assert balance.remaining == ALLOWANCE + totals.get((member, today), 0)
            held = sum(
                j.cost for j in self.open.values() if j.user_id == member and j.period == today
            )
            assert balance.reserved == held

    @invariant()
    def running_balances_equal_the_ledger_sums(self) -> None:
        if self.db is not None:
            self.run(assert_running_balances_match(self.db))

    @invariant()
    def the_ledger_only_grows(self) -> None:
        if self.db is None:
            return
        row = self.run(self.db.fetch_one("SELECT COUNT(*) FROM ledger"))
        assert row is not None and row[0] >= self.rows
        self.rows = row[0]


LedgerMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerProperty = LedgerMachine.TestCase


def test_ledger_property_postgresql(pg_server: PgServer) -> None:
    """The same machine on PostgreSQL: a fresh database for each example."""

    class PostgresLedgerMachine(LedgerMachine):
        name: str | None = None

        async def open_storage(self) -> Database:
            self.name, url = await pg_server.create_database()
            return await PostgresDatabase.open(url)  # type: ignore[return-value]

        def teardown(self) -> None:
            if self.db is not None:
                self.run(self.db.close())
                self.db = None
            if self.name is not None:
                self.run(pg_server.drop_database(self.name))
            super().teardown()

    run_state_machine_as_test(
        PostgresLedgerMachine,
        settings=settings(
            max_examples=10,
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
