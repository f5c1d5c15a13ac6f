"""The approval queue in the core: held jobs, one decision each, expiry on an injected clock.

The real core (desk, worker, MiniMax adapter against its simulator, SQLite) with
test doubles of our own interfaces only: the recording status notifier of
``tests.support`` and a recording moderators' notifier below.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from hailuo.jobs.controls import JobControls
from hailuo.jobs.notify import PostFailed
from hailuo.model.errors import QuotaExceeded
from hailuo.model.job import Job, StoredImage
from hailuo.model.moderation import DAY
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused, Actor, ApprovalQueue
from hailuo.money.quotas import QuotaPolicy
from providers.minimax import MiniMaxProvider
from storage.approvals import ApprovalDecision, ApprovalRequest
from storage.audit import AuditAction, AuditRepository
from storage.ledger import LedgerRepository
from storage.moderation import ModerationSettingsRepository
from tests import media
from tests.core import Core, build_core
from tests.pg_server import BOTH_ENGINES
from tests.sims.minimax import MiniMaxSimulator

ENGINES = BOTH_ENGINES

GUILD, MEMBER, ADMIN = 1, 42, 7
MOD_ROLE, MOD_A, MOD_B = 500, 501, 502
LOG_CHANNEL = 900
MODS_CHANNEL = 4242  # the moderators' (log) channel of the default fixture
MODERATOR = Actor(MOD_A, frozenset({MOD_ROLE}))


@dataclass
class RecordingApprovals:
    """``moderation.approval.ApprovalNotifier`` as a test keeps it: what was posted and shown."""

    fail_posts: int = 0
    posted: list[tuple[int, int, StoredImage | None]] = field(default_factory=list)
    decisions: list[tuple[int, ApprovalDecision | None]] = field(default_factory=list)

    async def post_request(
        self, channel_id: int, job: Job, request: ApprovalRequest, image: StoredImage | None
    ) -> int:
        if self.fail_posts:
            self.fail_posts -= 1
            raise PostFailed("simulated outage")
        self.posted.append((channel_id, job.id, image))
        return 7000 + job.id

    async def show_decision(self, job: Job, request: ApprovalRequest) -> None:
        self.decisions.append((job.id, request.decision))


@dataclass
class Moderated:
    core: Core
    queue: ApprovalQueue
    controls: JobControls
    mods: RecordingApprovals
    sim: MiniMaxSimulator

    async def held(self, **kw: object) -> Job:
        job = await self.core.new_job(**kw)  # type: ignore[arg-type]
        assert job.status is JobStatus.AWAITING_APPROVAL
        return job

    async def tick(self) -> None:
        await self.core.worker.tick()
        await self.queue.settled()


class NoRemover:
    async def remove_video(self, job: Job) -> bool:
        raise AssertionError("no video is removed in these tests")


@pytest.fixture
async def sim(clock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []


async def moderated_core(
    db, clock, sim, session, policy=None, remover=None, **settings
) -> Moderated:
    provider = MiniMaxProvider(session, api_key="mm-test-key", base_url=sim.base_url)
    mods = RecordingApprovals()
    core = build_core(
        db,
        clock,
        session,
        {"minimax": provider},
        policy=policy,
        approvals=mods,
        remover=remover or NoRemover(),
    )
    queue, controls = core.assembled.approvals, core.assembled.controls
    changes = {
        "approval_mode": "everyone",
        "moderator_role_id": MOD_ROLE,
        "log_channel_id": MODS_CHANNEL,  # approval needs the moderators' channel
        **settings,
    }
    await ModerationSettingsRepository(db).update(GUILD, changes, actor_id=ADMIN, now=clock())
    return Moderated(core, queue, controls, mods, sim)


@pytest.fixture
async def mod(db, clock, sim) -> AsyncIterator[Moderated]:
    async with aiohttp.ClientSession() as session:
        moderated = await moderated_core(db, clock, sim, session)
        yield moderated
        await moderated.queue.settled()


async def status(mod: Moderated, job_id: int) -> JobStatus:
    job = await mod.core.jobs.get(job_id)
    assert job is not None
    return job.status


async def ledger(db, job_id: int) -> list[tuple[str, int]]:
    return [(e.kind.value, e.delta) for e in await LedgerRepository(db).for_job(job_id)]


async def audit_rows(db, action: AuditAction) -> list:
    return list((await AuditRepository(db).page(GUILD, action=action, limit=50)).entries)


async def test_a_held_job_waits_then_is_approved_submitted_once_and_delivered(
    mod: Moderated, db, clock
) -> None:
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="a dog runs", resolution="768P")
    job = await mod.held(spec=spec, images={"first": ("image/png", png)})
    balance = await mod.core.desk.balance(GUILD, MEMBER)
    assert (balance.reserved, balance.remaining) == (1, 9)  # waiting jobs count
    request = await mod.queue.approvals.get(job.id)
    assert request is not None and request.pending
    assert request.expires_at == clock() + DAY

    await mod.tick()
    await mod.tick()  # a second sweep posts nothing twice
    assert [(c, j) for c, j, _ in mod.mods.posted] == [(MODS_CHANNEL, job.id)]
    image = mod.mods.posted[0][2]
    assert image is not None and image.mime == "image/png" and image.role == "first"
    request = await mod.queue.approvals.get(job.id)
    assert request is not None and request.mod_message_id == 7000 + job.id
    assert mod.sim.submits == []
    assert await status(mod, job.id) is JobStatus.AWAITING_APPROVAL

    decision = await mod.queue.approve(GUILD, job.id, MODERATOR)
    assert decision.job.status is JobStatus.QUEUED
    assert decision.request.decision is ApprovalDecision.APPROVED
    assert decision.request.decided_by == MOD_A
    await mod.queue.settled()
    assert mod.mods.decisions == [(job.id, ApprovalDecision.APPROVED)]
    assert mod.core.notifier.states(job.id)[-1] == "queued"

    job = await mod.core.run_until(job.id, JobStatus.DELIVERED)
    assert len(mod.sim.submits) == 1 and len(mod.core.notifier.posted) == 1
    assert await ledger(db, job.id) == [("reserve", -1), ("charge", 0)]
    rows = await audit_rows(db, AuditAction.APPROVE)
    assert [(r.job_id, r.actor_id, r.target_user_id) for r in rows] == [(job.id, MOD_A, MEMBER)]


async def test_the_request_goes_to_the_log_channel_when_one_is_set(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(db, clock, sim, session, log_channel_id=LOG_CHANNEL)
        job = await mod.held()
        await mod.tick()
        assert [(c, j, i) for c, j, i in mod.mods.posted] == [(LOG_CHANNEL, job.id, None)]


async def test_rejected_with_a_reason_is_refunded_and_the_member_is_told(
    mod: Moderated, db
) -> None:
    job = await mod.held()
    await mod.tick()
    with pytest.raises(ActionRefused) as empty:
        await mod.queue.reject(GUILD, job.id, MODERATOR, "   ")
    assert empty.value.rule == "approval.reason_empty"

    decision = await mod.queue.reject(GUILD, job.id, MODERATOR, "  no gore,\n please ")
    await mod.queue.settled()
    job = decision.job
    assert job.status is JobStatus.REJECTED
    assert job.failure_params == {"reason": "no gore, please"}
    assert await ledger(db, job.id) == [("reserve", -1), ("refund", 1)]
    assert (await mod.core.desk.balance(GUILD, MEMBER)).remaining == 10
    shown = mod.core.notifier.statuses[-1].job
    assert (
        shown.status is JobStatus.REJECTED and shown.failure_params["reason"] == "no gore, please"
    )
    assert mod.mods.decisions == [(job.id, ApprovalDecision.REJECTED)]
    rows = await audit_rows(db, AuditAction.REJECT)
    assert [(r.actor_id, r.details) for r in rows] == [(MOD_A, {"reason": "no gore, please"})]
    await mod.tick()
    assert mod.sim.submits == []


async def test_nobody_decides_in_time_so_it_expires_with_a_refund(
    mod: Moderated, db, clock
) -> None:
    job = await mod.held()
    await mod.tick()
    clock.advance(DAY - 1)
    await mod.tick()
    assert await status(mod, job.id) is JobStatus.AWAITING_APPROVAL
    clock.advance(1)
    await mod.tick()
    job = await mod.core.jobs.get(job.id) or pytest.fail()
    assert job.status is JobStatus.EXPIRED
    assert await ledger(db, job.id) == [("reserve", -1), ("refund", 1)]
    assert mod.mods.decisions == [(job.id, ApprovalDecision.EXPIRED)]
    rows = await audit_rows(db, AuditAction.EXPIRE)
    assert [(r.job_id, r.actor_id) for r in rows] == [(job.id, None)]
    with pytest.raises(ActionRefused) as late:
        await mod.queue.approve(GUILD, job.id, MODERATOR)
    assert late.value.rule == "approval.already_expired"
    await mod.tick()
    assert mod.sim.submits == [] and len(await audit_rows(db, AuditAction.EXPIRE)) == 1


async def test_a_member_without_the_role_is_refused_and_nothing_changes(mod: Moderated, db) -> None:
    job = await mod.held()
    for actor in (Actor(MEMBER), Actor(MOD_B, frozenset({123}))):
        with pytest.raises(ActionRefused) as refused:
            await mod.queue.approve(GUILD, job.id, actor)
        assert refused.value.rule == "approval.not_moderator_role"
        assert refused.value.params["role"] == f"<@&{MOD_ROLE}>"
        with pytest.raises(ActionRefused):
            await mod.queue.check_pending(GUILD, job.id, actor)
        with pytest.raises(ActionRefused):
            await mod.queue.reject(GUILD, job.id, actor, "no")
    assert await status(mod, job.id) is JobStatus.AWAITING_APPROVAL
    assert (await mod.queue.approvals.get(job.id) or pytest.fail()).pending
    assert await audit_rows(db, AuditAction.APPROVE) == []
    # Manage Messages is enough without the role.
    decision = await mod.queue.approve(GUILD, job.id, Actor(MOD_B, manage_messages=True))
    assert decision.job.status is JobStatus.QUEUED


async def test_two_moderators_at_once_make_one_decision(mod: Moderated, db) -> None:
    job = await mod.held()
    results = await asyncio.gather(
        mod.queue.approve(GUILD, job.id, Actor(MOD_A, frozenset({MOD_ROLE}))),
        mod.queue.reject(GUILD, job.id, Actor(MOD_B, frozenset({MOD_ROLE})), "too late?"),
        mod.queue.approve(GUILD, job.id, Actor(MOD_B, frozenset({MOD_ROLE}))),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, ActionRefused)]
    assert len(won) == 1 and len(lost) == 2
    assert won[0].job.status is JobStatus.QUEUED
    assert {e.rule for e in lost} == {"approval.already_approved"}
    assert {e.params["by"] for e in lost} == {MOD_A}
    assert len(await audit_rows(db, AuditAction.APPROVE)) == 1
    assert await audit_rows(db, AuditAction.REJECT) == []
    assert await ledger(db, job.id) == [("reserve", -1)]


async def test_a_cancel_racing_a_moderator_is_one_decision(mod: Moderated, db) -> None:
    job = await mod.held()
    results = await asyncio.gather(
        mod.controls.cancel(GUILD, job.id, Actor(MEMBER), confirmed=False),
        mod.queue.approve(GUILD, job.id, MODERATOR),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, ActionRefused) for r in results if isinstance(r, BaseException))
    final = await mod.core.jobs.get(job.id)
    assert final is not None and final.status in (JobStatus.CANCELLED, JobStatus.QUEUED)
    rows = await audit_rows(db, AuditAction.CANCEL) + await audit_rows(db, AuditAction.APPROVE)
    assert len(rows) == 1


async def test_new_members_wait_and_old_members_do_not(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(
            db, clock, sim, session, approval_mode="new_members", new_member_days=7
        )
        fresh = await mod.core.new_job(joined_at=clock() - DAY)
        old = await mod.core.new_job(user_id=43, joined_at=clock() - 30 * DAY)
        boss = await mod.core.new_job(user_id=44, roles=frozenset({MOD_ROLE}))
        assert fresh.status is JobStatus.AWAITING_APPROVAL
        assert old.status is JobStatus.QUEUED and boss.status is JobStatus.QUEUED
        assert await mod.queue.approvals.get(old.id) is None


async def test_waiting_jobs_hold_their_credits(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        # Caps high enough that the credits are what refuses the third request.
        policy = QuotaPolicy(daily_credits=2, max_jobs_per_member=5)
        mod = await moderated_core(db, clock, sim, session, policy=policy)
        await mod.held()
        await mod.held()
        with pytest.raises(QuotaExceeded) as refused:
            await mod.core.new_job()
        assert refused.value.rule == "quota.credits"


async def test_a_failed_post_of_the_request_is_retried_later(mod: Moderated, clock) -> None:
    job = await mod.held()
    mod.mods.fail_posts = 1
    await mod.tick()
    await mod.tick()
    assert mod.mods.posted == []  # waiting out the back-off
    clock.advance(31)
    await mod.tick()
    assert [j for _, j, _ in mod.mods.posted] == [job.id]


async def test_a_job_approved_hours_later_is_still_submitted(mod: Moderated, clock) -> None:
    """The queue deadline counts from the approval, not from the request."""
    job = await mod.held()
    await mod.tick()
    clock.advance(3 * 3600)
    await mod.queue.approve(GUILD, job.id, MODERATOR)
    job = await mod.core.run_until(job.id, JobStatus.DELIVERED, JobStatus.FAILED)
    assert job.status is JobStatus.DELIVERED and len(mod.sim.submits) == 1


async def test_an_hour_old_card_is_edited_on_state_changes_only(mod: Moderated, clock) -> None:
    """Discord caps the edits of messages older than an hour (30046): a card of a job
    that waited for approval does not follow its queue position."""
    first, second = await mod.held(), await mod.held(user_id=43)
    clock.advance(2 * 3600)
    for job in (first, second):
        approved = (await mod.queue.approve(GUILD, job.id, MODERATOR)).job
        await mod.core.jobs.update(approved, clock(), next_attempt_at=clock() + 600)
    await mod.queue.settled()
    await mod.tick()
    clock.advance(11)
    await mod.controls.cancel(GUILD, first.id, Actor(MEMBER), confirmed=False)
    await mod.tick()  # second is first in line now: a position change only
    shown = [
        (view.job.status.value, view.queue_position)
        for view in mod.core.notifier.statuses
        if view.job.id == second.id
    ]
    assert shown == [("queued", None), ("queued", 2)]


async def test_a_moderator_cannot_approve_their_own_job(mod: Moderated) -> None:
    job = await mod.held()
    own = Actor(MEMBER, frozenset({MOD_ROLE}))
    with pytest.raises(ActionRefused) as refused:
        await mod.queue.approve(GUILD, job.id, own)
    assert refused.value.rule == "approval.own_job"
    assert await status(mod, job.id) is JobStatus.AWAITING_APPROVAL
    await mod.queue.approve(GUILD, job.id, Actor(ADMIN, frozenset({MOD_ROLE})))
    assert await status(mod, job.id) is JobStatus.QUEUED
