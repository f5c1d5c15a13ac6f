"""The member's controls in the core: Cancel in every state, Re-roll, Delete, Info.

Each Cancel case checks the ledger exactly as the design's table says and that
one audit row (and only one) records it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from hailuo.model.job import Job
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.approval import ActionRefused, Actor
from storage.approvals import ApprovalDecision
from storage.audit import AuditAction, AuditRepository
from storage.ledger import LedgerRepository
from tests import media
from tests.pg_server import BOTH_ENGINES
from tests.sims.minimax import MiniMaxSimulator
from tests.test_approval import GUILD, MEMBER, MOD_ROLE, Moderated, moderated_core

ENGINES = BOTH_ENGINES

OTHER = 43
MODERATOR = Actor(600, frozenset({MOD_ROLE}))
OWNER = Actor(MEMBER)


@dataclass
class RecordingRemover:
    """``hailuo.jobs.controls.VideoRemover``: removes each message once, then finds it gone."""

    removed: list[int] = field(default_factory=list)

    async def remove_video(self, job: Job) -> bool:
        assert job.delivered_message_id is not None
        if job.delivered_message_id in self.removed:
            return False
        self.removed.append(job.delivered_message_id)
        return True


@pytest.fixture
async def sim(clock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator
    assert simulator.violations == []


@pytest.fixture
async def mod(db, clock, sim) -> AsyncIterator[Moderated]:
    async with aiohttp.ClientSession() as session:
        moderated = await moderated_core(
            db, clock, sim, session, remover=RecordingRemover(), approval_mode="off"
        )
        yield moderated
        await moderated.queue.settled()


async def ledger(db, job_id: int) -> list[tuple[str, int]]:
    return [(e.kind.value, e.delta) for e in await LedgerRepository(db).for_job(job_id)]


async def audit_rows(db, action: AuditAction) -> list:
    return list((await AuditRepository(db).page(GUILD, action=action, limit=50)).entries)


async def refused(call) -> ActionRefused:
    with pytest.raises(ActionRefused) as error:
        await call
    return error.value


async def test_cancel_while_waiting_for_approval_refunds_and_withdraws(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(db, clock, sim, session)
        job = await mod.core.new_job()
        await mod.core.worker.tick()
        await mod.queue.settled()
        assert (await mod.controls.plan_cancel(GUILD, job.id, OWNER)).charged is False
        done = await mod.controls.cancel(GUILD, job.id, OWNER, confirmed=False)
        await mod.queue.settled()
        assert done.job.status is JobStatus.CANCELLED and not done.charged
        assert await ledger(db, job.id) == [("reserve", -1), ("refund", 1)]
        request = await mod.queue.approvals.get(job.id)
        assert request is not None and request.decision is ApprovalDecision.CANCELLED
        assert mod.mods.decisions == [(job.id, ApprovalDecision.CANCELLED)]
        assert len(await audit_rows(db, AuditAction.CANCEL)) == 1
        assert mod.core.notifier.states(job.id)[-1] == "cancelled"
        refusal = await refused(mod.queue.approve(GUILD, job.id, MODERATOR))
        assert refusal.rule == "approval.already_cancelled"


async def test_cancel_while_queued_refunds_in_full_and_nothing_is_sent(mod: Moderated, db) -> None:
    job = await mod.core.new_job()
    done = await mod.controls.cancel(GUILD, job.id, OWNER, confirmed=False)
    assert done.job.status is JobStatus.CANCELLED and not done.charged
    assert await ledger(db, job.id) == [("reserve", -1), ("refund", 1)]
    assert (await mod.core.desk.balance(GUILD, MEMBER)).remaining == 10
    rows = await audit_rows(db, AuditAction.CANCEL)
    assert [(r.actor_id, r.target_user_id, r.details) for r in rows] == [
        (MEMBER, MEMBER, {"from": "queued", "charged": False})
    ]
    await mod.core.worker.tick()
    assert mod.sim.submits == []


@pytest.mark.parametrize("state", [JobStatus.SUBMITTED, JobStatus.RUNNING])
async def test_cancel_after_acceptance_stays_charged_and_only_after_a_confirm(
    mod: Moderated, db, state: JobStatus
) -> None:
    mod.sim.polls_until_done = None
    job = await mod.core.new_job()
    job = await mod.core.run_until(job.id, state)
    plan = await mod.controls.plan_cancel(GUILD, job.id, OWNER)
    assert plan.charged
    refusal = await refused(mod.controls.cancel(GUILD, job.id, OWNER, confirmed=False))
    assert refusal.rule == "control.cancel.needs_confirm"
    assert await ledger(db, job.id) == [("reserve", -1)]  # nothing changed before the confirm
    assert await audit_rows(db, AuditAction.CANCEL) == []

    done = await mod.controls.cancel(GUILD, job.id, OWNER, confirmed=True)
    assert done.job.status is JobStatus.CANCELLED and done.charged
    assert await ledger(db, job.id) == [("reserve", -1), ("charge", 0)]
    balance = await mod.core.desk.balance(GUILD, MEMBER)
    assert (balance.used, balance.reserved, balance.remaining) == (1, 0, 9)
    rows = await audit_rows(db, AuditAction.CANCEL)
    assert [r.details for r in rows] == [{"from": state.value, "charged": True}]

    # The bot stops following the task: a finished task is neither fetched nor posted.
    queries = len(mod.sim.requests_to("query"))
    mod.sim.complete(next(iter(mod.sim.tasks)))
    for _ in range(3):
        await mod.core.worker.tick()
        mod.core.clock.advance(10)
    assert len(mod.sim.requests_to("query")) == queries
    assert mod.core.notifier.posted == []


async def test_submitting_and_succeeded_cannot_be_cancelled(mod: Moderated, db, clock) -> None:
    # submitting: the intent is written and the provider call is on the wire.
    first = await mod.core.new_job()
    first = await mod.core.jobs.transition(first, JobStatus.SUBMITTING, clock(), provider="minimax")
    refusal = await refused(mod.controls.cancel(GUILD, first.id, OWNER, confirmed=True))
    assert refusal.rule == "control.cancel.submitting"
    assert await ledger(db, first.id) == [("reserve", -1)]

    mod.sim.polls_until_done = 1
    second = await mod.core.new_job(user_id=OTHER)
    second = await mod.core.run_until(second.id, JobStatus.SUCCEEDED)
    refusal = await refused(mod.controls.cancel(GUILD, second.id, Actor(OTHER), confirmed=True))
    assert refusal.rule == "control.cancel.succeeded"
    assert await ledger(db, second.id) == [("reserve", -1)]

    delivered = await mod.core.run_until(second.id, JobStatus.DELIVERED)
    refusal = await refused(mod.controls.plan_cancel(GUILD, delivered.id, Actor(OTHER)))
    assert refusal.rule == "control.cancel.finished"
    assert refusal.params["state"] == "delivered"
    assert await ledger(db, second.id) == [("reserve", -1), ("charge", 0)]
    assert await audit_rows(db, AuditAction.CANCEL) == []


async def test_only_the_member_or_a_moderator_may_cancel(mod: Moderated, db) -> None:
    job = await mod.core.new_job()
    refusal = await refused(mod.controls.cancel(GUILD, job.id, Actor(OTHER), confirmed=True))
    assert refusal.rule == "control.cancel.not_yours"
    refusal = await refused(mod.controls.plan_cancel(GUILD + 1, job.id, OWNER))
    assert refusal.rule == "control.unknown_job"  # another server's job is not found here
    assert await ledger(db, job.id) == [("reserve", -1)]
    done = await mod.controls.cancel(GUILD, job.id, MODERATOR, confirmed=False)
    assert done.job.status is JobStatus.CANCELLED
    rows = await audit_rows(db, AuditAction.CANCEL)
    assert [(r.actor_id, r.target_user_id) for r in rows] == [(MODERATOR.user_id, MEMBER)]


async def test_reroll_makes_a_second_job_with_its_own_reservation(mod: Moderated, db) -> None:
    png = media.make_image("PNG", 640, 480)
    spec = JobSpec(mode=Mode.IMAGE, prompt="waves", resolution="768P", duration=10)
    first = await mod.core.new_job(spec, images={"first": ("image/png", png)})
    refusal = await refused(mod.controls.plan_reroll(GUILD, first.id, OWNER))
    assert refusal.rule == "control.reroll.not_finished"
    first = await mod.core.run_until(first.id, JobStatus.DELIVERED)

    plan = await mod.controls.plan_reroll(GUILD, first.id, OWNER)
    assert (plan.cost, plan.remaining) == (2, 8)
    refusal = await refused(mod.controls.reroll(GUILD, first.id, Actor(OTHER)))
    assert refusal.rule == "control.reroll.not_yours"

    second = await mod.controls.reroll(GUILD, first.id, OWNER, locale="fr")
    assert second.id != first.id and second.spec == first.spec and second.locale == "fr"
    assert second.status is JobStatus.QUEUED
    assert await ledger(db, second.id) == [("reserve", -2)]
    assert await ledger(db, first.id) == [("reserve", -2), ("charge", 0)]
    images = await mod.core.jobs.images(second.id)
    assert images["first"].data == png
    await mod.core.run_until(second.id, JobStatus.DELIVERED)
    assert len(mod.sim.submits) == 2 and mod.sim.submits[0] == mod.sim.submits[1]


async def test_a_rejected_job_cannot_be_rerolled(db, clock, sim) -> None:
    async with aiohttp.ClientSession() as session:
        mod = await moderated_core(db, clock, sim, session)
        job = await mod.core.new_job()
        await mod.queue.reject(GUILD, job.id, MODERATOR, "no")
        refusal = await refused(mod.controls.plan_reroll(GUILD, job.id, OWNER))
        assert refusal.rule == "control.reroll.rejected"
        await mod.queue.settled()


async def test_delete_the_video_by_the_member_or_a_moderator_only(mod: Moderated, db) -> None:
    remover = mod.controls.remover
    assert isinstance(remover, RecordingRemover)
    job = await mod.core.new_job()
    refusal = await refused(mod.controls.delete_video(GUILD, job.id, OWNER))
    assert refusal.rule == "control.delete.no_video"
    job = await mod.core.run_until(job.id, JobStatus.DELIVERED)

    refusal = await refused(mod.controls.delete_video(GUILD, job.id, Actor(OTHER)))
    assert refusal.rule == "control.delete.not_yours"
    assert remover.removed == [] and await audit_rows(db, AuditAction.VIDEO_DELETED) == []

    await mod.controls.delete_video(GUILD, job.id, OWNER)
    assert remover.removed == [job.delivered_message_id]
    refusal = await refused(mod.controls.delete_video(GUILD, job.id, MODERATOR))
    assert refusal.rule == "control.delete.gone"
    rows = await audit_rows(db, AuditAction.VIDEO_DELETED)
    assert [(r.job_id, r.actor_id, r.target_user_id) for r in rows] == [(job.id, MEMBER, MEMBER)]

    other = await mod.core.run_until((await mod.core.new_job()).id, JobStatus.DELIVERED)
    await mod.controls.delete_video(GUILD, other.id, MODERATOR)
    assert len(await audit_rows(db, AuditAction.VIDEO_DELETED)) == 2


async def test_info_and_the_open_jobs(mod: Moderated) -> None:
    mod.sim.polls_until_done = None
    job = await mod.core.new_job()
    job = await mod.core.run_until(job.id, JobStatus.RUNNING)
    info = await mod.controls.info(GUILD, job.id)
    assert info.job.provider == "minimax"
    assert info.job.provider_task_id == next(iter(mod.sim.tasks))
    assert info.credits == "held"
    later = await mod.core.new_job()
    theirs = await mod.core.new_job(user_id=OTHER)
    await mod.controls.cancel(GUILD, later.id, OWNER, confirmed=False)
    assert [j.id for j in await mod.controls.open_jobs(GUILD, MEMBER)] == [job.id]
    assert [j.id for j in await mod.controls.open_jobs(GUILD, OTHER)] == [theirs.id]
    assert (await mod.controls.info(GUILD, later.id)).credits == "refunded"
