"""The bot's own permissions in the channel, read from ``app_permissions`` (issue 10, item 4).

``pytest -k app_permissions``: a channel where the bot may not attach files (an overwrite
on its role, as an admin would set it) refuses ``/hailuo text`` and ``/hailuo animate``
before anything is charged, naming the permission in the member's language; nothing is
reserved and no job exists. The simulator computes ``app_permissions`` from the bot's role
and the channel's overwrites, or takes it from the test.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import discord
import pytest

from hailuo.doctor import doctor
from hailuo.jobs.access import INVITE_PERMISSIONS, granted_names, missing, permissions_from
from hailuo.settings import Settings, load_settings
from storage.db import Database
from storage.moderation import ModerationSettingsRepository
from tests import media
from tests.discord_sim import DiscordSimulator, SimAttachment, SimChannel, SimGuild
from tests.e2e import SimSetup, private_text, running_bot

pytestmark = pytest.mark.timeout(60)

MEMBER = 6001
ATTACH = discord.Permissions(attach_files=True).value
HISTORY = discord.Permissions(read_message_history=True).value


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup([SimGuild(channels=[SimChannel("general"), SimChannel("no-files")])])


def deny_bot(sim: DiscordSimulator, channel: SimChannel, bits: int) -> None:
    """An overwrite on the bot's role in ``channel`` (before the bot starts: GUILD_CREATE)."""
    role = sim.guilds[0].bot_role
    assert role is not None
    channel.permission_overwrites = [
        {"id": str(role.id), "type": 0, "allow": "0", "deny": str(bits)}
    ]


async def nothing_reserved(app, sim: DiscordSimulator) -> None:
    guild = sim.guilds[0].id
    assert await app.bot.desk.jobs.recent_for_member(guild, MEMBER) == []
    balance = await app.bot.desk.balance(guild, MEMBER)
    assert (balance.reserved, balance.used, balance.remaining) == (0, 0, 10)


def test_app_permissions_invite_integer_is_the_required_set() -> None:
    wanted = discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
    )
    assert INVITE_PERMISSIONS == wanted.value == 117760
    assert missing({"administrator"}) == []
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"permissions={INVITE_PERMISSIONS}" in readme and "51200" not in readme


async def test_app_permissions_no_attach_files_is_refused_before_charging(
    discord_sim, minimax, env
) -> None:
    no_files = discord_sim.guilds[0].channels[1]
    deny_bot(discord_sim, no_files, ATTACH)
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a cat"}, user_id=MEMBER, channel_id=no_files.id
        )
        assert int(inter.payload["app_permissions"]) & ATTACH == 0
        text = await private_text(inter)
        assert "Attach Files" in text and "Nothing was charged" in text
        assert "Send Messages" not in text  # only what is missing is named
        await nothing_reserved(app, discord_sim)

        # In Chinese, the permission is named in Chinese.
        zh = await discord_sim.send_slash(
            ["hailuo", "text"],
            {"prompt": "a cat"},
            user_id=MEMBER,
            channel_id=no_files.id,
            locale="zh-CN",
        )
        assert "附加文件" in await private_text(zh)

        # An image request is refused before its picture is even fetched.
        png = media.make_image("PNG", 640, 480)
        cdn_before = len(discord_sim.find_calls("GET", r"^/cdn/"))
        animate = await discord_sim.send_slash(
            ["hailuo", "animate"],
            {"prompt": "it moves"},
            user_id=MEMBER,
            channel_id=no_files.id,
            attachments={"image": SimAttachment(png, "a.png", "image/png", 640, 480, len(png))},
        )
        assert "Attach Files" in await private_text(animate)
        assert len(discord_sim.find_calls("GET", r"^/cdn/")) == cdn_before
        await nothing_reserved(app, discord_sim)

        # Where the bot may do everything, the same request becomes a job.
        ok = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat"}, user_id=MEMBER)
        await ok.wait_response()
        assert not ok.ephemeral and ok.original_message is not None
        assert len(await app.bot.desk.jobs.recent_for_member(discord_sim.guilds[0].id, MEMBER)) == 1


async def test_app_permissions_every_missing_permission_is_named(discord_sim, minimax, env) -> None:
    view_send = discord.Permissions(view_channel=True, send_messages=True).value
    async with running_bot(env) as app:
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "a cat"}, user_id=MEMBER, app_permissions=view_send
        )
        text = await private_text(inter)
        for name in ("Attach Files", "Embed Links", "Read Message History"):
            assert name in text
        assert "View Channel" not in text
        await nothing_reserved(app, discord_sim)


async def test_app_permissions_doctor_lists_what_each_configured_channel_lacks(
    discord_sim: DiscordSimulator, tmp_path: Path
) -> None:
    guild = discord_sim.guilds[0]
    general, no_files = guild.channels
    deny_bot(discord_sim, no_files, ATTACH | HISTORY)
    database = tmp_path / "doctor.sqlite3"
    db = await Database.open(database)
    try:
        await ModerationSettingsRepository(db).update(
            guild.id,
            {"allowed_channel_ids": [general.id], "log_channel_id": no_files.id},
            actor_id=1,
            now=time.time(),
        )
    finally:
        await db.close()

    def settings(token: str) -> Settings:
        env = {
            "HAILUO_DATABASE": str(database),
            "DISCORD_TOKEN": token,
            "DISCORD_API_BASE_URL": discord_sim.api_base,
        }
        return load_settings(environ=env, dotenv_path=None)

    out = io.StringIO()
    assert await doctor(settings(discord_sim.token), out) == 1
    text = out.getvalue()
    assert f"#{general.id} (allowed, server {guild.id}): ok" in text
    lacking = "MISSING Attach Files, Read Message History"
    assert f"#{no_files.id} (log, server {guild.id}): {lacking}" in text

    # A token Discord refuses: it says it cannot read them, and never prints the token.
    out = io.StringIO()
    await doctor(settings("not-the-token"), out)
    text = out.getvalue()
    assert f"#{no_files.id} (log, server {guild.id}): cannot read its permissions: HTTP 401" in text
    assert "not-the-token" not in text


def test_app_permissions_computed_as_discord_does() -> None:
    """@everyone and roles, then overwrites: @everyone, the roles (denies, then allows),
    the member; Administrator has everything."""
    guild, bot_role, other_role, me = 1, 2, 3, 9
    base = discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True, read_message_history=True
    ).value
    roles = [
        {"id": guild, "permissions": str(base)},
        {"id": bot_role, "permissions": str(ATTACH)},
        {"id": other_role, "permissions": "0"},
    ]

    def names(overwrites: list[dict[str, object]], mine: tuple[int, ...] = (bot_role,)) -> list:
        value = permissions_from(
            guild_id=guild, roles=roles, member_roles=mine, member_id=me, overwrites=overwrites
        )
        return missing(granted_names(value))

    assert names([]) == []
    deny_role = {"id": bot_role, "type": 0, "allow": "0", "deny": str(ATTACH)}
    assert names([deny_role]) == ["attach_files"]
    allow_member = {"id": me, "type": 1, "allow": str(ATTACH), "deny": "0"}
    assert names([deny_role, allow_member]) == []  # the member's own overwrite wins
    deny_everyone = {"id": guild, "type": 0, "allow": "0", "deny": str(HISTORY)}
    assert names([deny_everyone]) == ["read_message_history"]
    allow_role = {"id": bot_role, "type": 0, "allow": str(HISTORY), "deny": "0"}
    assert names([deny_everyone, allow_role]) == []  # a role's allow beats @everyone's deny
    assert names([], mine=()) == ["attach_files"]
    admin = discord.Permissions(administrator=True).value
    roles.append({"id": 4, "permissions": str(admin)})
    assert names([deny_role, deny_everyone], mine=(4,)) == []
