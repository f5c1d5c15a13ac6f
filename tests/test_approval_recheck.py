"""Approving judges the held job again (issue 11, finding 5): ``pytest -k approval_recheck``.

Held jobs count in the in-flight caps, so a member cannot queue many requests and have
them all approved at once past ``max_jobs_per_member``; a block placed while the job
waited, or caps lowered meanwhile, refuse the approval and leave the request pending.
The real core against the MiniMax simulator and SQLite, as ``tests/test_approval.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hailuo.model.errors import QuotaExceeded
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused
from hailuo.money.quotas import QuotaPolicy
from storage.moderation import BlockRepository
from tests.pg_server import BOTH_ENGINES
from tests.sims.minimax import MiniMaxSimulator
from tests.test_approval import (
    ADMIN,
    GUILD,
    MEMBER,
    MODERATOR,
    Moderated,
    ledger,
    moderated_core,
    status,
)

ENGINES = BOTH_ENGINES


@pytest.fixture
async def sim(clock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []


@pytest.fixture
async def mod(db, clock, sim) -> AsyncIterator[Moderated]:
    async with aiohttp.ClientSession() as session:
        moderated = await moderated_core(db, clock, sim, session)
        yield moderated
        await moderated.queue.settled()


async def test_approval_recheck_held_jobs_count_in_the_member_cap(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        policy = QuotaPolicy(daily_credits=10, max_jobs_per_member=2)
        mod = await moderated_core(db, clock, sim, session, policy=policy)
        first, second = await mod.held(), await mod.held()
        # A third request is refused at once: the two held ones fill the member's cap.
        with pytest.raises(QuotaExceeded) as refused:
            await mod.core.new_job()
        assert refused.value.rule == "quota.member_in_flight"
        assert refused.value.params["maximum"] == 2
        for job in (first, second):
            await mod.queue.approve(GUILD, job.id, MODERATOR)
        assert [await status(mod, j.id) for j in (first, second)] == [JobStatus.QUEUED] * 2
        await mod.queue.settled()


async def test_approval_recheck_held_jobs_count_in_the_server_cap(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        policy = QuotaPolicy(daily_credits=10, max_jobs_per_member=5, max_jobs_per_guild=2)
        mod = await moderated_core(db, clock, sim, session, policy=policy)
        await mod.held(user_id=43)
        await mod.held(user_id=44)
        with pytest.raises(QuotaExceeded) as refused:
            await mod.core.new_job(user_id=45)
        assert refused.value.rule == "quota.guild_in_flight"


async def test_approval_recheck_refuses_a_member_blocked_while_waiting(
    mod: Moderated, db, clock
) -> None:
    job = await mod.held()
    await BlockRepository(db).block(GUILD, MEMBER, by=ADMIN, reason="spam", now=clock())
    with pytest.raises(ActionRefused) as refused:
        await mod.queue.approve(GUILD, job.id, MODERATOR)
    assert refused.value.rule == "approval.member_blocked"
    assert refused.value.params == {"job_id": job.id, "user_id": MEMBER}
    # Nothing moved: still held, still reserved, nothing sent; the moderator may reject.
    assert await status(mod, job.id) is JobStatus.AWAITING_APPROVAL
    assert await ledger(db, job.id) == [("reserve", -1)]
    request = await mod.queue.approvals.get(job.id)
    assert request is not None and request.pending
    await mod.tick()
    assert mod.sim.submits == []
    await mod.queue.reject(GUILD, job.id, MODERATOR, "blocked for spam")
    assert await status(mod, job.id) is JobStatus.REJECTED
    assert await ledger(db, job.id) == [("reserve", -1), ("refund", 1)]


async def test_approval_recheck_refuses_past_caps_lowered_while_waiting(db, clock, sim) -> None:
    """Three requests held under a cap of 5; the cap drops to 2: two may be approved."""
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(
            db, clock, sim, session, policy=QuotaPolicy(daily_credits=10, max_jobs_per_member=5)
        )
        jobs = [await mod.held() for _ in range(3)]

        async def lowered(guild_id: int) -> QuotaPolicy:
            return QuotaPolicy(daily_credits=10, max_jobs_per_member=2)

        mod.queue.policy = lowered
        await mod.queue.approve(GUILD, jobs[0].id, MODERATOR)
        await mod.queue.approve(GUILD, jobs[1].id, MODERATOR)
        with pytest.raises(ActionRefused) as refused:
            await mod.queue.approve(GUILD, jobs[2].id, MODERATOR)
        assert refused.value.rule == "approval.member_in_flight"
        assert refused.value.params["maximum"] == 2
        assert await status(mod, jobs[2].id) is JobStatus.AWAITING_APPROVAL
        request = await mod.queue.approvals.get(jobs[2].id)
        assert request is not None and request.pending

        # Once one of the member's videos is done, the third may be approved.
        await mod.controls.cancel(GUILD, jobs[0].id, MODERATOR, confirmed=True)
        await mod.queue.approve(GUILD, jobs[2].id, MODERATOR)
        assert await status(mod, jobs[2].id) is JobStatus.QUEUED
        await mod.queue.settled()


async def test_approval_recheck_server_cap_on_approval(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(
            db, clock, sim, session, policy=QuotaPolicy(daily_credits=10, max_jobs_per_guild=3)
        )
        a, b = await mod.held(user_id=43), await mod.held(user_id=44)

        async def lowered(guild_id: int) -> QuotaPolicy:
            return QuotaPolicy(daily_credits=10, max_jobs_per_guild=1)

        mod.queue.policy = lowered
        await mod.queue.approve(GUILD, a.id, MODERATOR)
        with pytest.raises(ActionRefused) as refused:
            await mod.queue.approve(GUILD, b.id, MODERATOR)
        assert refused.value.rule == "approval.guild_in_flight"
        assert await status(mod, b.id) is JobStatus.AWAITING_APPROVAL
        await mod.queue.settled()


async def test_interaction_twin_only_a_free_job_is_withdrawn(db, clock, sim) -> None:
    """A refused first answer withdraws a held or queued job, refunded; one the provider
    already has is left alone (the front end announces it in the channel instead)."""
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(db, clock, sim, session, approval_mode="off")
        queued = await mod.core.new_job()
        withdrawn = await mod.controls.withdraw_unanswered(queued.id)
        assert withdrawn is not None and withdrawn.status is JobStatus.CANCELLED
        assert await ledger(db, queued.id) == [("reserve", -1), ("refund", 1)]

        running = await mod.core.new_job()
        running = await mod.core.run_until(running.id, JobStatus.SUBMITTED, JobStatus.RUNNING)
        assert await mod.controls.withdraw_unanswered(running.id) is None
        assert await status(mod, running.id) is running.status
        assert await ledger(db, running.id) == [("reserve", -1)]
        await mod.queue.settled()


async def test_interaction_twin_held_job_withdrawn_decides_its_request(mod: Moderated, db) -> None:
    job = await mod.held()
    withdrawn = await mod.controls.withdraw_unanswered(job.id)
    assert withdrawn is not None and withdrawn.status is JobStatus.CANCELLED
    request = await mod.queue.approvals.get(job.id)
    assert request is not None and not request.pending
    assert await ledger(db, job.id) == [("reserve", -1), ("refund", 1)]
