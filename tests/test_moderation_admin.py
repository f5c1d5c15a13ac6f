"""``/hailuo-admin`` moderation settings, blocklist and audit pages, through simulated Discord."""

from __future__ import annotations

import pytest

from hailuo.model.moderation import DAY, ApprovalMode
from storage.audit import AuditAction
from tests.discord_sim import EVERYONE_PERMISSIONS
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import (
    ADMIN,
    ADMIN_PERMISSIONS,
    admin,
    channel,
    count,
    embed_text,
    log_titles,
    mirrored,
    moderated_guild,
    role,
    said,
    user,
)

pytestmark = pytest.mark.timeout(60)

REFUSED = "Only members with the Manage Server permission can use this."


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


async def test_the_settings_view_shows_every_default(discord_sim, minimax, env) -> None:
    async with running_bot(env) as app:
        inter = await admin(discord_sim, "moderation")
        assert said(inter) == "None"  # no change asked: the view alone
        view = embed_text(inter)
        for line in [
            "Moderation settings",
            "Channels for videos: all channels",
            "Roles that may make videos: everyone",
            "Moderator role: none",
            "Log channel: none",
            "Approval: off: no job waits for a moderator",
            "Strikes: blocked after 3 provider refusals within 7 days",
            "Blocklist: 0 entries",
        ]:
            assert line in view, view
        assert await count(app.bot.services.db, "audit") == 0


async def test_each_change_is_one_audit_row_and_one_log_message(discord_sim, minimax, env) -> None:
    guild = discord_sim.guilds[0]
    general, art, log = guild.channels
    creators, moderators, trusted = guild.roles
    async with running_bot(env) as app:
        db = app.bot.services.db
        inter = await admin(
            discord_sim,
            "moderation",
            {
                "moderator": role(moderators.id),
                "log_channel": channel(log.id),
                "approval": "new_members",
                "new_member_days": 3,
                "approval_hours": 12,
                "strikes": 2,
                "strike_days": 1,
            },
        )
        assert said(inter) == (
            "Changed: approval_expiry_seconds, approval_mode, log_channel_id, moderator_role_id, "
            "new_member_days, strike_threshold, strike_window_seconds."
        )
        view = embed_text(inter)
        assert f"Moderator role: <@&{moderators.id}>" in view
        assert f"Log channel: <#{log.id}>" in view
        assert "jobs of members who joined less than 3 days ago wait" in view
        assert "A waiting job expires after 12 h" in view
        assert "blocked after 2 provider refusals within 1 day" in view
        (row,) = (await app.bot.services.audit.page(guild.id)).entries  # type: ignore[union-attr]
        assert row.action is AuditAction.SETTING_CHANGED and row.actor_id == ADMIN
        assert row.details["approval_mode"] == {"old": "off", "new": "new_members"}
        assert row.details["log_channel_id"] == {"old": None, "new": log.id}
        assert row.details["strike_window_seconds"] == {"old": 7 * DAY, "new": DAY}
        # The change that set the log channel is the first thing logged there.
        await mirrored(app)
        assert log_titles(discord_sim, log.id) == ["Setting changed"]
        posted = discord_sim.channel_messages(log.id)[-1].embeds[0]
        fields = {f["name"]: f["value"] for f in posted["fields"]}
        assert fields["By"] == f"<@{ADMIN}>"
        assert f"moderator_role_id: none → <@&{moderators.id}>" in fields["Details"]

        steps = [
            ("channels", {"action": "add", "channel": channel(art.id)}, f"<#{art.id}>"),
            ("channels", {"action": "add"}, f"<#{general.id}>, <#{art.id}>"),  # this channel
            ("channels", {"action": "remove", "channel": channel(general.id)}, f"<#{art.id}>"),
            (
                "roles",
                {"which": "generate", "action": "add", "role": role(creators.id)},
                f"Roles that may make videos: <@&{creators.id}>",
            ),
            (
                "roles",
                {"which": "trusted", "action": "add", "role": role(trusted.id)},
                f"or who hold none of <@&{trusted.id}>",
            ),
            ("moderation", {"clear": "moderator"}, "Moderator role: none"),
        ]
        for n, (sub, options, shown) in enumerate(steps, start=2):
            inter = await admin(discord_sim, sub, options, channel_id=general.id)
            assert said(inter).startswith("Changed: "), said(inter)
            assert shown in embed_text(inter), embed_text(inter)
            assert await count(db, "audit") == n
            await mirrored(app)
            assert len(log_titles(discord_sim, log.id)) == n

        # The same value again changes nothing: no row, no message.
        inter = await admin(discord_sim, "channels", {"action": "add", "channel": channel(art.id)})
        assert said(inter) == "Nothing changed."
        inter = await admin(discord_sim, "roles", {"which": "trusted", "action": "remove"})
        assert said(inter) == "Name a role for this action."
        assert await count(db, "audit") == len(steps) + 1

        inter = await admin(
            discord_sim,
            ["blocklist", "add"],
            {"kind": "word", "text": "  kill ", "label": "violence"},
        )
        assert said(inter) == "Blocklist entry #1 added (word); members are told: violence."
        inter = await admin(discord_sim, ["blocklist", "add"], {"kind": "regex", "text": r"(a)\1"})
        assert said(inter).startswith("That pattern uses a backreference")
        inter = await admin(discord_sim, ["blocklist", "list"])
        assert "#1 · word · `kill` · violence" in embed_text(inter)
        inter = await admin(discord_sim, ["blocklist", "remove"], {"entry": 9})
        assert said(inter) == "This server has no blocklist entry #9."
        inter = await admin(discord_sim, ["blocklist", "remove"], {"entry": 1})
        assert said(inter) == "Blocklist entry #1 removed."
        total = len(steps) + 3
        assert await count(db, "audit") == total
        await mirrored(app)
        assert log_titles(discord_sim, log.id) == ["Setting changed"] * total

        settings = await app.bot.desk.gate.settings.get(guild.id)
        assert settings.allowed_channel_ids == {art.id}
        assert settings.allowed_role_ids == {creators.id}
        assert settings.trusted_role_ids == {trusted.id}
        assert settings.moderator_role_id is None
        assert settings.approval_mode is ApprovalMode.NEW_MEMBERS

        # Approval keeps its channel: clearing it while approval is on is refused.
        refused = await admin(discord_sim, "moderation", {"clear": "log_channel"})
        assert said(refused).startswith("Approval needs a log channel first")
        assert await count(db, "audit") == total
        # Once the log channel is unset, nothing is mirrored (that change neither).
        await admin(discord_sim, "moderation", {"approval": "off", "clear": "log_channel"})
        await admin(discord_sim, "channels", {"action": "all"})
        await mirrored(app)
        assert len(log_titles(discord_sim, log.id)) == total
        assert await count(db, "audit") == total + 2


async def test_every_moderation_command_checks_manage_server_at_run_time(
    discord_sim, minimax, env
) -> None:
    guild = discord_sim.guilds[0]
    log = guild.channels[2]
    async with running_bot(env) as app:
        synced = next(c for c in discord_sim.command_syncs[-1].json if c["name"] == "hailuo-admin")
        names = {option["name"] for option in synced["options"]}
        assert {"moderation", "channels", "roles", "blocklist", "audit"} <= names
        # The server overrode the default permission: Discord delivers to anyone.
        for path, options in [
            ("moderation", None),
            ("moderation", {"log_channel": channel(log.id)}),
            ("channels", {"action": "add"}),
            ("roles", {"which": "generate", "action": "clear"}),
            (["blocklist", "add"], {"kind": "word", "text": "x"}),
            (["blocklist", "list"], None),
            (["blocklist", "remove"], {"entry": 1}),
            ("audit", None),
        ]:
            inter = await admin(discord_sim, path, options, permissions=EVERYONE_PERMISSIONS)
            assert said(inter) == REFUSED, path
        assert await count(app.bot.services.db, "audit") == 0
        assert (await app.bot.desk.gate.settings.get(guild.id)).log_channel_id is None


async def test_audit_pages_older_and_newer_with_filters(discord_sim, minimax, env) -> None:
    members = [8_000_001, 8_000_002]
    async with running_bot(env) as app:
        for n in range(12):
            inter = await admin(
                discord_sim, "grant", {"member": user(members[n % 2]), "credits": n + 1}
            )
            assert "got" in said(inter)
        await admin(discord_sim, "block", {"member": user(members[0]), "reason": "spam"})
        await admin(discord_sim, "moderation", {"strikes": 5})
        assert await count(app.bot.services.db, "audit") == 14

        first = await admin(discord_sim, "audit")
        text = embed_text(first)
        ids = _ids(text)
        assert ids == list(range(14, 4, -1))
        assert "**Setting changed** by" in text and "strike_threshold: 3 → 5" in text
        older, newer = _buttons(first)
        assert newer["disabled"] is True and older.get("disabled") is not True

        # A member without Manage Server cannot page, even holding the message.
        message = first.original_message
        assert message is not None
        press = await discord_sim.send_component(
            older["custom_id"], message_id=message.id, permissions=EVERYONE_PERMISSIONS
        )
        await press.wait_response()
        assert press.ephemeral and said(press) == REFUSED

        press = await discord_sim.send_component(
            older["custom_id"], message_id=message.id, permissions=ADMIN_PERMISSIONS
        )
        await press.wait_response()
        assert press.response_type == 7
        assert _ids(embed_text(press)) == [4, 3, 2, 1]
        older, newer = _buttons(press)
        assert older["disabled"] is True and newer.get("disabled") is not True
        back = await discord_sim.send_component(
            newer["custom_id"], message_id=message.id, permissions=ADMIN_PERMISSIONS
        )
        await back.wait_response()
        assert _ids(embed_text(back)) == list(range(14, 4, -1))

        about = await admin(discord_sim, "audit", {"member": user(members[0])})
        assert _ids(embed_text(about)) == [13, 11, 9, 7, 5, 3, 1]
        grants = await admin(
            discord_sim, "audit", {"member": user(members[1]), "action": "grant", "before": 9}
        )
        assert _ids(embed_text(grants)) == [8, 6, 4, 2]
        blocks = await admin(discord_sim, "audit", {"action": "block"})
        assert _ids(embed_text(blocks)) == [13]
        assert "reason: spam" in embed_text(blocks)
        none = await admin(discord_sim, "audit", {"action": "approve"})
        assert "No audit entries match." in embed_text(none)


def _ids(text: str) -> list[int]:
    return [int(line[2:].split("`")[0]) for line in text.splitlines() if line.startswith("`#")]


def _buttons(inter) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    rows = (inter.response_data or {}).get("components") or []
    older, newer = rows[0]["components"]
    return older, newer
