"""The audit service: one row per action, mirrored once committed to the server's log channel."""

from __future__ import annotations

import logging

import pytest

from hailuo.moderation.admin import ModerationAdmin
from hailuo.moderation.audit import AuditLog
from storage.audit import AuditAction, AuditEntry, AuditRepository
from storage.blocklist import BlocklistKind
from storage.db import Database
from storage.moderation import BlockRepository, ModerationSettingsRepository, StrikeRepository
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import ADMIN, admin, channel, count, logged, moderated_guild, said, user
from tests.pg_server import BOTH_ENGINES
from tests.support import FakeClock, RecordingNotifier

ENGINES = BOTH_ENGINES

GUILD, LOG, MOD, MEMBER = 1, 555, 77, 42


async def _log_channel(db: Database, clock: FakeClock, channel_id: int | None = LOG) -> None:
    await ModerationSettingsRepository(db).update(
        GUILD, {"log_channel_id": channel_id}, actor_id=MOD, now=clock()
    )


async def test_record_appends_one_row_and_mirrors_it(db: Database, clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    audit = AuditLog(db, notifier, clock=clock)
    await _log_channel(db, clock)
    await audit.drained()
    notifier.logged.clear()
    row_id = await audit.record(
        GUILD,
        AuditAction.APPROVE,
        actor_id=MOD,
        job_id=9,
        target_user_id=MEMBER,
        details={"reason": "fine"},
    )
    (entry,) = (await audit.page(GUILD, action=AuditAction.APPROVE)).entries
    assert entry == AuditEntry(
        row_id, GUILD, MOD, AuditAction.APPROVE, 9, MEMBER, {"reason": "fine"}, clock()
    )
    await audit.drained()
    assert notifier.logged == [(LOG, entry)]


async def test_no_log_channel_no_mirror(db: Database, clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    audit = AuditLog(db, notifier, clock=clock)
    await audit.record(GUILD, AuditAction.GRANT, actor_id=MOD, target_user_id=MEMBER)
    assert len((await audit.page(GUILD)).entries) == 1
    await audit.drained()
    assert notifier.logged == []


async def test_inside_a_transaction_it_is_mirrored_only_once_committed(
    db: Database, clock: FakeClock
) -> None:
    notifier = RecordingNotifier()
    audit = AuditLog(db, notifier, clock=clock)
    await _log_channel(db, clock)
    await audit.drained()
    notifier.logged.clear()
    async with db.transaction() as tx:
        await audit.record(GUILD, AuditAction.CANCEL, actor_id=MEMBER, job_id=3, tx=tx)
        await audit.record(GUILD, AuditAction.VIDEO_DELETED, actor_id=MOD, job_id=3, tx=tx)
        assert notifier.logged == []  # not before the commit
    await audit.drained()
    assert [e.action for _, e in notifier.logged] == [
        AuditAction.CANCEL,
        AuditAction.VIDEO_DELETED,
    ]

    notifier.logged.clear()
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await audit.record(GUILD, AuditAction.REJECT, actor_id=MOD, job_id=4, tx=tx)
            raise RuntimeError("the decision failed")
    await audit.drained()
    assert notifier.logged == []  # rolled back: no row, nothing said
    assert (await audit.page(GUILD, action=AuditAction.REJECT)).entries == ()


async def test_every_writer_of_audit_rows_is_mirrored(db: Database, clock: FakeClock) -> None:
    """Rows the repositories write themselves (blocks, strikes, settings) and the
    moderation-admin service's (blocklist) too."""
    notifier = RecordingNotifier()
    audit = AuditLog(db, notifier, clock=clock)
    admin = ModerationAdmin(db, settings=ModerationSettingsRepository(db), audit=audit, clock=clock)
    await _log_channel(db, clock)
    blocks = BlockRepository(db)
    await blocks.block(GUILD, MEMBER, by=MOD, reason="spam", now=clock())
    await blocks.unblock(GUILD, MEMBER, by=MOD, now=clock())
    await StrikeRepository(db).add(GUILD, MEMBER, job_id=None, rule="x", now=clock())
    entry = await admin.add_entry(
        GUILD, BlocklistKind.WORD, " kill ", label="violence", actor_id=MOD
    )
    assert entry.text == "kill" and await admin.entries(GUILD) == (entry,)
    await admin.remove_entry(GUILD, entry.id, actor_id=MOD)
    assert await admin.entries(GUILD) == ()
    await AuditRepository(db).append(GUILD, AuditAction.EXPIRE, actor_id=None, now=clock())
    await audit.drained()
    mirrored = [e.action.value for _, e in notifier.logged]
    assert mirrored == [
        "setting_changed",
        "block",
        "unblock",
        "strike",
        "setting_changed",
        "setting_changed",
        "expire",
    ]
    stored = [e.id for e in reversed((await AuditRepository(db).page(GUILD, limit=50)).entries)]
    assert [e.id for _, e in notifier.logged] == stored  # each row once, in order
    blocklist = [e.details for _, e in notifier.logged if "blocklist_added" in str(e.details)]
    assert blocklist == [{"blocklist_added": {"id": entry.id, "kind": "word", "label": "violence"}}]
    assert all("kill" not in str(e.details) for _, e in notifier.logged)  # ids and labels only


async def test_a_failing_mirror_never_fails_the_action(
    db: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(RecordingNotifier):
        async def log_event(self, channel_id: int, entry: AuditEntry) -> None:
            raise OSError("the chat service is down")

    audit = AuditLog(db, Broken(), clock=clock)
    await _log_channel(db, clock)
    with caplog.at_level(logging.ERROR, logger="hailuo.moderation.audit"):
        await audit.record(GUILD, AuditAction.BLOCK, actor_id=MOD, target_user_id=MEMBER)
        await audit.drained()
    assert len((await audit.page(GUILD)).entries) == 2
    assert "could not mirror audit row" in caplog.text


async def test_close_stops_mirroring(db: Database, clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    audit = AuditLog(db, notifier, clock=clock)
    await _log_channel(db, clock)
    await audit.drained()
    audit.close()
    await audit.record(GUILD, AuditAction.GRANT, actor_id=MOD)
    assert len(notifier.logged) == 1  # only the setting, before close


async def test_pages_go_older_and_newer(db: Database, clock: FakeClock) -> None:
    audit = AuditLog(db, RecordingNotifier(), clock=clock)
    for n in range(7):
        await audit.record(GUILD, AuditAction.GRANT, actor_id=MOD, target_user_id=n % 2)
    first = await audit.page(GUILD, limit=3)
    assert [e.id for e in first.entries] == [7, 6, 5]
    assert (first.next_before_id, first.newer_after_id) == (5, None)
    second = await audit.page(GUILD, before_id=first.next_before_id, limit=3)
    assert [e.id for e in second.entries] == [4, 3, 2]
    assert (second.next_before_id, second.newer_after_id) == (2, 4)
    last = await audit.page(GUILD, before_id=2, limit=3)
    assert [e.id for e in last.entries] == [1] and last.next_before_id is None
    back = await audit.page(GUILD, after_id=1, limit=3)
    assert [e.id for e in back.entries] == [4, 3, 2] and back.newer_after_id == 4
    top = await audit.page(GUILD, after_id=4, limit=3)
    assert [e.id for e in top.entries] == [7, 6, 5] and top.newer_after_id is None
    odd = await audit.page(GUILD, member=1, limit=10)
    assert [e.id for e in odd.entries] == [6, 4, 2]


# --- the real bot: each action, one row and one message in the log channel ---------------


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


@pytest.mark.timeout(60)
async def test_each_action_leaves_one_row_and_one_log_message(discord_sim, minimax, env) -> None:
    guild = discord_sim.guilds[0]
    general, _, log = guild.channels
    async with running_bot(env) as app:
        db = app.bot.services.db
        audit = app.bot.services.audit
        assert audit is not None
        await admin(discord_sim, "moderation", {"log_channel": channel(log.id)})
        commands = [
            ("grant", {"member": user(MEMBER), "credits": 5}, "grant"),
            ("take", {"member": user(MEMBER), "credits": 2}, "grant"),
            ("reset", {"member": user(MEMBER)}, "reset"),
            ("block", {"member": user(MEMBER), "reason": "spam"}, "block"),
            ("unblock", {"member": user(MEMBER)}, "unblock"),
            ("moderation", {"strikes": 4}, "setting_changed"),
            ("budget", {"daily": 30}, "setting_changed"),
        ]
        for n, (sub, options, action) in enumerate(commands, start=2):
            inter = await admin(discord_sim, sub, options, channel_id=general.id)
            assert "Only members" not in said(inter)
            assert await count(db, "audit") == n, sub
            await audit.drained()
            (newest,) = (await audit.page(guild.id, limit=1)).entries
            assert newest.action.value == action and newest.actor_id == ADMIN
            posts = logged(discord_sim, log.id)
            assert len(posts) == n, sub
            footer = posts[-1].embeds[0]["footer"]["text"]
            assert footer == f"#{newest.id}"
        # Nothing changed, nothing written: the unblock of a member who is not blocked.
        await admin(discord_sim, "unblock", {"member": user(MEMBER)})
        assert await count(db, "audit") == len(commands) + 1

        # The approval queue's and the member buttons' actions go through the same service.
        for n, action in enumerate(
            [
                AuditAction.APPROVE,
                AuditAction.REJECT,
                AuditAction.EXPIRE,
                AuditAction.CANCEL,
                AuditAction.VIDEO_DELETED,
            ],
            start=len(commands) + 2,
        ):
            await audit.record(guild.id, action, actor_id=ADMIN, job_id=n, target_user_id=MEMBER)
            assert await count(db, "audit") == n
            await audit.drained()
            posts = logged(discord_sim, log.id)
            assert len(posts) == n
            fields = {f["name"]: f["value"] for f in posts[-1].embeds[0]["fields"]}
            assert fields["Job"] == f"#{n}" and fields["Member"] == f"<@{MEMBER}>"
        titles = [m.embeds[0]["title"] for m in logged(discord_sim, log.id)]
        assert titles[-5:] == [
            "Job approved",
            "Job rejected",
            "Approval expired",
            "Job cancelled",
            "Video deleted",
        ]
        # The mirror pings nobody.
        posts = discord_sim.find_calls(method="POST", path_regex=rf"/channels/{log.id}/messages$")
        assert len(posts) == len(titles)
        assert all(call.json["allowed_mentions"]["parse"] == [] for call in posts)
