"""Moderation storage on a real SQLite file: settings, blocklist, blocks, audit, approvals."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hailuo.model.errors import UserInputError
from hailuo.model.job import NewJob
from hailuo.model.moderation import DAY, ApprovalMode, ModerationSettings
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from storage.approvals import ApprovalDecision, ApprovalRepository, UnknownApproval
from storage.audit import AuditAction, AuditRepository
from storage.blocklist import BlocklistKind, BlocklistRepository
from storage.db import Database
from storage.jobs import JobRepository
from storage.moderation import BlockRepository, ModerationSettingsRepository
from storage.opening import open_storage
from tests.pg_server import BOTH_ENGINES

ENGINES = BOTH_ENGINES

GUILD, ADMIN, MOD_A, MOD_B, MEMBER = 1, 100, 201, 202, 300
NOW = 1_795_000_000.0


async def held_job(db: Database, user_id: int = MEMBER) -> int:
    async with db.transaction() as tx:
        return await JobRepository(db).create(
            tx,
            NewJob(
                guild_id=GUILD,
                channel_id=2,
                user_id=user_id,
                spec=JobSpec(mode=Mode.TEXT, prompt="x"),
                cost=1,
                period="2026-11-26",
                status=JobStatus.AWAITING_APPROVAL,
            ),
            now=NOW,
        )


# --- settings --------------------------------------------------------------------------


async def test_settings_default_when_unset(db: Database) -> None:
    settings = await ModerationSettingsRepository(db).get(GUILD)
    assert settings == ModerationSettings(GUILD)
    assert settings.allowed_channel_ids == frozenset()  # all channels
    assert settings.allowed_role_ids == frozenset()  # everyone
    assert settings.approval_mode is ApprovalMode.OFF
    assert settings.new_member_days == 7
    assert settings.approval_expiry_seconds == DAY
    assert (settings.strike_threshold, settings.strike_window_seconds) == (3, 7 * DAY)
    assert settings.moderator_role_id is None and settings.log_channel_id is None


async def test_partial_updates_keep_the_rest_and_return_old_and_new(db: Database) -> None:
    repo = ModerationSettingsRepository(db)
    first = await repo.update(
        GUILD,
        {"approval_mode": "new_members", "allowed_channel_ids": [5, 6]},
        actor_id=ADMIN,
        now=NOW,
    )
    assert first.old == ModerationSettings(GUILD)
    assert first.changed == {
        "allowed_channel_ids": (frozenset(), frozenset({5, 6})),
        "approval_mode": (ApprovalMode.OFF, ApprovalMode.NEW_MEMBERS),
    }
    second = await repo.update(GUILD, {"new_member_days": 14}, actor_id=ADMIN, now=NOW + 1)
    assert second.old == first.new
    stored = await repo.get(GUILD)
    assert stored == second.new
    assert stored.approval_mode is ApprovalMode.NEW_MEMBERS
    assert stored.allowed_channel_ids == frozenset({5, 6}) and stored.new_member_days == 14
    assert await repo.get(GUILD + 1) == ModerationSettings(GUILD + 1)  # other servers untouched

    page = await AuditRepository(db).page(GUILD, action=AuditAction.SETTING_CHANGED)
    assert [e.details for e in page.entries] == [
        {"new_member_days": {"old": 7, "new": 14}},
        {
            "allowed_channel_ids": {"old": [], "new": [5, 6]},
            "approval_mode": {"old": "off", "new": "new_members"},
        },
    ]
    assert all(e.actor_id == ADMIN for e in page.entries)


async def test_an_update_that_changes_nothing_writes_nothing(db: Database) -> None:
    repo = ModerationSettingsRepository(db)
    change = await repo.update(GUILD, {"strike_threshold": 3}, actor_id=ADMIN, now=NOW)
    assert change.changed == {} and change.old == change.new
    assert (await AuditRepository(db).page(GUILD)).entries == ()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"strike_threshold": 0}, "moderation.setting_too_small"),
        ({"new_member_days": -1}, "moderation.setting_too_small"),
        ({"approval_expiry_seconds": 1}, "moderation.setting_too_small"),
        ({"approval_mode": "sometimes"}, "moderation.setting_choice"),
    ],
)
async def test_invalid_settings_are_refused_with_nothing_written(
    db: Database, changes: dict[str, object], code: str
) -> None:
    repo = ModerationSettingsRepository(db)
    with pytest.raises(UserInputError) as caught:
        await repo.update(GUILD, {"log_channel_id": 9, **changes}, actor_id=ADMIN, now=NOW)
    assert caught.value.rule == code
    assert await repo.get(GUILD) == ModerationSettings(GUILD)


async def test_unknown_settings_are_a_bug(db: Database) -> None:
    with pytest.raises(ValueError, match="not a moderation setting"):
        await ModerationSettingsRepository(db).update(
            GUILD, {"guild_id": 2}, actor_id=ADMIN, now=NOW
        )


# --- blocklist -------------------------------------------------------------------------


async def test_blocklist_add_list_remove(db: Database) -> None:
    repo = BlocklistRepository(db)
    word = await repo.add(GUILD, BlocklistKind.WORD, "cat", added_by=ADMIN, now=NOW)
    regex = await repo.add(
        GUILD, BlocklistKind.REGEX, "sp[a4]m", label="no spam", added_by=ADMIN, now=NOW
    )
    assert [(e.kind, e.text, e.label) for e in await repo.entries(GUILD)] == [
        (BlocklistKind.WORD, "cat", ""),
        (BlocklistKind.REGEX, "sp[a4]m", "no spam"),
    ]
    with pytest.raises(sqlite3.IntegrityError):
        await repo.add(GUILD, BlocklistKind.WORD, "cat", added_by=ADMIN, now=NOW)
    assert await repo.remove(GUILD + 1, word.id) is None  # not that server's
    assert await repo.remove(GUILD, word.id) == word
    assert await repo.entries(GUILD) == (regex,)
    # The audit rows of a change are the moderation-admin service's (tests/test_audit.py).
    assert (await AuditRepository(db).page(GUILD)).entries == ()


# --- blocks ----------------------------------------------------------------------------


async def test_block_unblock_and_list(db: Database) -> None:
    blocks = BlockRepository(db)
    assert not await blocks.is_blocked(GUILD, MEMBER, NOW)
    block = await blocks.block(GUILD, MEMBER, by=MOD_A, reason="spam", now=NOW)
    assert (block.blocked_by, block.reason, block.until, block.lifted_at) == (
        MOD_A,
        "spam",
        None,
        None,
    )
    assert await blocks.is_blocked(GUILD, MEMBER, NOW + 365 * DAY)
    assert not await blocks.is_blocked(GUILD + 1, MEMBER, NOW)
    assert await blocks.list(GUILD, NOW) == (block,)

    lifted = await blocks.unblock(GUILD, MEMBER, by=MOD_B, now=NOW + 10, reason="appeal")
    assert lifted is not None and lifted.id == block.id and lifted.lifted_by == MOD_B
    assert not await blocks.is_blocked(GUILD, MEMBER, NOW + 11)
    assert await blocks.unblock(GUILD, MEMBER, by=MOD_B, now=NOW + 12) is None
    assert await blocks.list(GUILD, NOW + 12) == ()

    page = await AuditRepository(db).page(GUILD, member=MEMBER)
    assert [(e.action, e.actor_id, e.target_user_id) for e in page.entries] == [
        (AuditAction.UNBLOCK, MOD_B, MEMBER),
        (AuditAction.BLOCK, MOD_A, MEMBER),
    ]


async def test_a_timed_block_ends_by_itself_and_a_new_block_replaces_the_old(
    db: Database,
) -> None:
    blocks = BlockRepository(db)
    await blocks.block(GUILD, MEMBER, by=MOD_A, reason="cool off", now=NOW, until=NOW + DAY)
    assert await blocks.is_blocked(GUILD, MEMBER, NOW + DAY - 1)
    assert not await blocks.is_blocked(GUILD, MEMBER, NOW + DAY)
    assert await blocks.unblock(GUILD, MEMBER, by=MOD_A, now=NOW + DAY) is None
    assert await blocks.strikes_reset_at(GUILD, MEMBER, NOW + DAY + 5) == NOW + DAY

    again = await blocks.block(GUILD, MEMBER, by=MOD_B, reason="again", now=NOW + 2 * DAY)
    assert await blocks.active(GUILD, MEMBER, NOW + 3 * DAY) == again
    rows = await db.fetch_all("SELECT lifted_at FROM blocks ORDER BY id")
    assert [r[0] for r in rows] == [NOW + 2 * DAY, None]  # the history stays
    with pytest.raises(ValueError, match="end after"):
        await blocks.block(GUILD, MEMBER, by=MOD_B, reason="", now=NOW, until=NOW)


# --- audit -----------------------------------------------------------------------------


async def test_audit_pages_with_filters(db: Database) -> None:
    audit = AuditRepository(db)
    for i in range(25):
        await audit.append(
            GUILD,
            AuditAction.GRANT if i % 2 else AuditAction.RESET,
            actor_id=ADMIN,
            target_user_id=MEMBER if i % 3 == 0 else MEMBER + 1,
            details={"n": i},
            now=NOW + i,
        )
    await audit.append(GUILD + 1, AuditAction.GRANT, actor_id=ADMIN, now=NOW)

    seen: list[int] = []
    before: int | None = None
    while True:
        page = await audit.page(GUILD, before_id=before)
        assert len(page.entries) <= 10
        seen.extend(e.details["n"] for e in page.entries)
        if page.next_before_id is None:
            break
        before = page.next_before_id
    assert seen == list(range(24, -1, -1))  # newest first, every entry once

    grants = await audit.page(GUILD, action=AuditAction.GRANT, limit=100)
    assert [e.details["n"] for e in grants.entries] == list(range(23, 0, -2))
    member = await audit.page(GUILD, member=MEMBER, limit=100)
    assert [e.details["n"] for e in member.entries] == [24, 21, 18, 15, 12, 9, 6, 3, 0]
    both = await audit.page(GUILD, member=MEMBER, action=AuditAction.RESET, limit=3)
    assert [e.details["n"] for e in both.entries] == [24, 18, 12]
    rest = await audit.page(
        GUILD, member=MEMBER, action=AuditAction.RESET, before_id=both.next_before_id
    )
    assert [e.details["n"] for e in rest.entries] == [6, 0] and rest.next_before_id is None
    by_actor = await audit.page(GUILD, member=ADMIN, limit=100)
    assert len(by_actor.entries) == 25  # the member filter matches the actor too


async def test_audit_is_append_only(db: Database) -> None:
    await AuditRepository(db).append(GUILD, AuditAction.BLOCK, actor_id=MOD_A, now=NOW)
    for statement in ("UPDATE audit SET actor_id = 1", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as tx:
                await tx.execute(statement)
    with pytest.raises(sqlite3.IntegrityError):  # a word the schema does not know
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO audit (guild_id, action, created_at) VALUES (1, 'erase', 0)"
            )


# --- approvals -------------------------------------------------------------------------


async def test_approval_request_lifecycle(db: Database) -> None:
    approvals = ApprovalRepository(db)
    job_id = await held_job(db)
    request = await approvals.create(job_id, GUILD, MEMBER, now=NOW, expires_at=NOW + DAY)
    assert request.pending and request.user_id == MEMBER
    await approvals.set_mod_message(job_id, channel_id=77, message_id=88)
    assert await approvals.pending(GUILD) == (await approvals.get(job_id),)
    assert await approvals.due(NOW + DAY - 1) == ()
    assert [r.job_id for r in await approvals.due(NOW + DAY)] == [job_id]

    result = await approvals.decide(
        job_id, ApprovalDecision.EXPIRED, by=None, now=NOW + DAY, reason="nobody decided"
    )
    assert result.won and result.request.decision is ApprovalDecision.EXPIRED
    assert result.request.mod_message_id == 88 and result.request.decided_by is None
    assert await approvals.due(NOW + 2 * DAY) == () and await approvals.pending(GUILD) == ()
    late = await approvals.decide(job_id, ApprovalDecision.APPROVED, by=MOD_A, now=NOW + DAY + 1)
    assert not late.won and late.request.decision is ApprovalDecision.EXPIRED
    with pytest.raises(UnknownApproval):
        await approvals.decide(job_id + 1, ApprovalDecision.APPROVED, by=MOD_A, now=NOW)


async def decided_once(db: Database, job_id: int) -> None:
    entries = (await AuditRepository(db).page(GUILD, limit=100)).entries
    decisions = [e for e in entries if e.job_id == job_id]
    assert len(decisions) == 1 and decisions[0].target_user_id == MEMBER


async def test_two_moderators_at_once_make_exactly_one_decision(db: Database) -> None:
    approvals = ApprovalRepository(db)
    job_id = await held_job(db)
    await approvals.create(job_id, GUILD, MEMBER, now=NOW, expires_at=NOW + DAY)
    a, b = await asyncio.gather(
        approvals.decide(job_id, ApprovalDecision.APPROVED, by=MOD_A, now=NOW + 1),
        approvals.decide(job_id, ApprovalDecision.REJECTED, by=MOD_B, now=NOW + 1, reason="no"),
    )
    assert [a.won, b.won].count(True) == 1
    winner, loser = (a, b) if a.won else (b, a)
    assert loser.request == winner.request  # the loser reads who was first, and what they chose
    assert loser.request.decided_by in (MOD_A, MOD_B)
    await decided_once(db, job_id)


async def test_one_decision_across_two_connections(db: Database, db_target: Path) -> None:
    job_id = await held_job(db)
    await ApprovalRepository(db).create(job_id, GUILD, MEMBER, now=NOW, expires_at=NOW + DAY)
    other = await open_storage(db_target)  # the same database, a second process
    try:
        results = await asyncio.gather(
            *(
                ApprovalRepository(conn).decide(
                    job_id, ApprovalDecision.APPROVED, by=moderator, now=NOW + 1
                )
                for conn, moderator in ((db, MOD_A), (other, MOD_B), (db, MOD_B), (other, MOD_A))
            )
        )
    finally:
        await other.close()
    assert sum(r.won for r in results) == 1
    assert len({r.request.decided_by for r in results}) == 1
    await decided_once(db, job_id)
