"""The moderation commands of ``/hailuo-admin``: settings, the blocklist and the audit log.

A mixin of the one ``/hailuo-admin`` group cog (``cogs.admin.AdminCommands``),
whose ``interaction_check`` requires Manage Server on every call. Every setter
answers with the one settings view (``/hailuo-admin moderation`` shows it
alone); each change is one ``setting_changed`` audit row with every changed
value's old and new, written with the change and mirrored to the log channel.

- ``moderation``: the moderator role, log channel, approval mode, new-member
  days, approval expiry and strikes (any of them; none: just show);
- ``channels``: the channels where videos may be made (none listed: all);
- ``roles``: the roles that may make videos (none: everyone) or the trusted roles;
- ``blocklist add|remove|list``: words, phrases and patterns with a label;
- ``audit``: the log, newest first, by member and/or action, with Older/Newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs.audit import PAGE_SIZE, audit_page
from hailuo.i18n.messages import Term, render
from hailuo.model.errors import UserInputError
from hailuo.model.moderation import DAY, ApprovalMode, ModerationSettings, SettingsChange
from hailuo.moderation.screening import DEFAULT_LABEL

if TYPE_CHECKING:
    from bot import HailuoBot
from hailuo.records import AuditAction, BlocklistKind

if TYPE_CHECKING:
    from bot import HailuoBot
    from hailuo.moderation.admin import ModerationAdmin

HOUR = 3600
_SET_OPTIONS = {"generate": "allowed_role_ids", "trusted": "trusted_role_ids"}


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id


def _mentions(ids: frozenset[int], form: str, empty: str) -> str:
    return ", ".join(form.format(i) for i in sorted(ids)) or empty


def _kind(kind: BlocklistKind) -> Term:
    """An entry's kind in the admin's words (word, phrase, regex)."""
    return Term(f"blocklist.kind.{kind.value}")


def _hours(seconds: int) -> str:
    return f"{seconds / HOUR:g}"


def _approval_text(settings: ModerationSettings, locale: str) -> str:
    mode = settings.approval_mode
    if mode is ApprovalMode.NEW_MEMBERS and settings.trusted_role_ids:
        roles = _mentions(settings.trusted_role_ids, "<@&{}>", "")
        return render(
            "modadmin.approval.untrusted", locale, days=settings.new_member_days, roles=roles
        )
    return render(f"modadmin.approval.{mode.value}", locale, days=settings.new_member_days)


def settings_embed(settings: ModerationSettings, blocklist_size: int, locale: str) -> discord.Embed:
    """Every moderation setting of the server, in one embed."""
    none = render("modadmin.none", locale)
    embed = discord.Embed(title=render("modadmin.title", locale), colour=0x5865F2)

    def field(code: str, value: str) -> None:
        embed.add_field(name=render(code, locale), value=value, inline=False)

    field(
        "modadmin.channels",
        _mentions(settings.allowed_channel_ids, "<#{}>", render("modadmin.channels_all", locale)),
    )
    field(
        "modadmin.roles",
        _mentions(settings.allowed_role_ids, "<@&{}>", render("modadmin.roles_all", locale)),
    )
    moderator = settings.moderator_role_id
    field("modadmin.moderator", f"<@&{moderator}>" if moderator is not None else none)
    log_channel = settings.log_channel_id
    field("modadmin.log_channel", f"<#{log_channel}>" if log_channel is not None else none)
    approval = _approval_text(settings, locale)
    if settings.approval_mode is not ApprovalMode.OFF:
        expiry = render("modadmin.expiry", locale, hours=_hours(settings.approval_expiry_seconds))
        approval = f"{approval}. {expiry}."
    field("modadmin.approval", approval)
    field(
        "modadmin.strikes",
        render(
            "modadmin.strikes_value",
            locale,
            threshold=settings.strike_threshold,
            days=f"{settings.strike_window_seconds / DAY:g}",
        ),
    )
    field("modadmin.blocklist", render("modadmin.blocklist_value", locale, count=blocklist_size))
    return embed


class ModerationAdminCommands(commands.Cog):
    """The moderation commands of ``/hailuo-admin``; mixed into the group cog."""

    bot: HailuoBot

    blocklist = app_commands.Group(
        name="blocklist", description="Words, phrases and patterns refused in prompts"
    )

    @property
    def _admin(self) -> ModerationAdmin:
        return self.bot.services.moderation

    async def _show(
        self, interaction: discord.Interaction, change: SettingsChange | None = None
    ) -> None:
        """Answer with the settings view, after a line naming what changed (if asked to)."""
        locale = str(interaction.locale)
        guild_id = _guild_id(interaction)
        settings = change.new if change else await self._admin.settings(guild_id)
        count = len(await self._admin.entries(guild_id))
        text = None
        if change is not None:
            names = ", ".join(change.changed)
            text = (
                render("modadmin.changed", locale, settings=names)
                if names
                else render("modadmin.unchanged", locale)
            )
        await interaction.response.send_message(
            text,
            embed=settings_embed(settings, count, locale),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _update(self, interaction: discord.Interaction, changes: Mapping[str, Any]) -> None:
        change = await self._admin.update(
            _guild_id(interaction), changes, actor_id=interaction.user.id
        )
        await self._show(interaction, change)

    @app_commands.command(
        name="moderation", description="Moderation settings: show them all, or change some"
    )
    @app_commands.describe(
        moderator="The role whose members approve jobs (and are never held or gated)",
        log_channel="Where every moderation and admin action is logged",
        approval="Which jobs wait for a moderator before anything is spent",
        new_member_days="Members who joined fewer days ago than this count as new",
        approval_hours="Hours a waiting job waits before it expires (refunded)",
        strikes="Provider refusals that block a member",
        strike_days="Days within which those refusals count",
        clear="Unset the moderator role or the log channel",
    )
    async def moderation(
        self,
        interaction: discord.Interaction,
        moderator: discord.Role | None = None,
        log_channel: discord.TextChannel | None = None,
        approval: Literal["off", "new_members", "everyone"] | None = None,
        new_member_days: app_commands.Range[int, 0, 365] | None = None,
        approval_hours: app_commands.Range[int, 1, 720] | None = None,
        strikes: app_commands.Range[int, 1, 100] | None = None,
        strike_days: app_commands.Range[int, 1, 365] | None = None,
        clear: Literal["moderator", "log_channel"] | None = None,
    ) -> None:
        changes: dict[str, Any] = {}
        if clear is not None:
            changes["moderator_role_id" if clear == "moderator" else "log_channel_id"] = None
        if moderator is not None:
            changes["moderator_role_id"] = moderator.id
        if log_channel is not None:
            changes["log_channel_id"] = log_channel.id
        if approval is not None:
            changes["approval_mode"] = ApprovalMode(approval)
        if new_member_days is not None:
            changes["new_member_days"] = new_member_days
        if approval_hours is not None:
            changes["approval_expiry_seconds"] = approval_hours * HOUR
        if strikes is not None:
            changes["strike_threshold"] = strikes
        if strike_days is not None:
            changes["strike_window_seconds"] = strike_days * DAY
        if not changes:
            await self._show(interaction)
            return
        await self._update(interaction, changes)

    @app_commands.command(name="channels", description="Where videos may be made (default: all)")
    @app_commands.describe(
        action="Add a channel, remove one, or allow all channels again",
        channel="The channel (default: this one); a thread counts as its channel",
    )
    async def channels(
        self,
        interaction: discord.Interaction,
        action: Literal["add", "remove", "all"],
        channel: discord.TextChannel | None = None,
    ) -> None:
        current = (await self._admin.settings(_guild_id(interaction))).allowed_channel_ids
        if action == "all":
            await self._update(interaction, {"allowed_channel_ids": frozenset()})
            return
        channel_id = channel.id if channel is not None else interaction.channel_id
        if channel_id is None:
            raise UserInputError("modadmin.channel_needed")
        new = current | {channel_id} if action == "add" else current - {channel_id}
        await self._update(interaction, {"allowed_channel_ids": new})

    @app_commands.command(name="roles", description="Who may make videos, and trusted roles")
    @app_commands.describe(
        which="generate: roles that may make videos (none: everyone); trusted: skip approval",
        action="Add a role, remove one, or empty the list",
        role="The role",
    )
    async def roles(
        self,
        interaction: discord.Interaction,
        which: Literal["generate", "trusted"],
        action: Literal["add", "remove", "clear"],
        role: discord.Role | None = None,
    ) -> None:
        name = _SET_OPTIONS[which]
        current: frozenset[int] = getattr(await self._admin.settings(_guild_id(interaction)), name)
        if action == "clear":
            await self._update(interaction, {name: frozenset()})
            return
        if role is None:
            raise UserInputError("modadmin.role_needed")
        new = current | {role.id} if action == "add" else current - {role.id}
        await self._update(interaction, {name: new})

    @blocklist.command(name="add", description="Refuse prompts with a word, phrase or pattern")
    @app_commands.describe(
        kind="word or phrase (evasions folded), or a regular expression",
        text="What to refuse (members never see it)",
        label="The rule members are told instead, e.g. 'violence' (default: server word list)",
    )
    async def blocklist_add(
        self,
        interaction: discord.Interaction,
        kind: Literal["word", "phrase", "regex"],
        text: app_commands.Range[str, 1, 200],
        label: app_commands.Range[str, 0, 100] = "",
    ) -> None:
        locale = str(interaction.locale)
        entry = await self._admin.add_entry(
            _guild_id(interaction),
            BlocklistKind(kind),
            text,
            label=label,
            actor_id=interaction.user.id,
        )
        reply = render(
            "blocklist.added",
            locale,
            id=entry.id,
            kind=_kind(entry.kind),
            label=entry.label or DEFAULT_LABEL,
        )
        await interaction.response.send_message(reply, ephemeral=True)

    @blocklist.command(name="remove", description="Remove a blocklist entry by its number")
    @app_commands.describe(entry="The entry's number (#) from /hailuo-admin blocklist list")
    async def blocklist_remove(self, interaction: discord.Interaction, entry: int) -> None:
        removed = await self._admin.remove_entry(
            _guild_id(interaction), entry, actor_id=interaction.user.id
        )
        reply = render("blocklist.removed", str(interaction.locale), id=removed.id)
        await interaction.response.send_message(reply, ephemeral=True)

    @blocklist.command(name="list", description="This server's blocklist")
    async def blocklist_list(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        entries = await self._admin.entries(_guild_id(interaction))
        lines = [
            render(
                "blocklist.line",
                locale,
                id=e.id,
                kind=_kind(e.kind),
                text=e.text.replace("`", "ˋ"),
                label=e.label or DEFAULT_LABEL,
            )
            for e in entries
        ]
        embed = discord.Embed(
            title=render("blocklist.title", locale, count=len(entries)),
            description=_fit(lines) if lines else render("blocklist.empty", locale),
        )
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="audit", description="Who did what: the moderation and admin log")
    @app_commands.describe(
        member="Only entries about this member (or by them)",
        action="Only this kind of entry",
        before="Only entries older than this entry number",
    )
    @app_commands.choices(
        action=[app_commands.Choice(name=a.value, value=a.value) for a in AuditAction]
    )
    async def audit(
        self,
        interaction: discord.Interaction,
        member: discord.User | None = None,
        action: str | None = None,
        before: app_commands.Range[int, 1] | None = None,
    ) -> None:
        locale = str(interaction.locale)
        kind = AuditAction(action) if action else None
        member_id = member.id if member is not None else None
        page = await self._admin.audit_page(
            _guild_id(interaction),
            member=member_id,
            action=kind,
            before_id=before,
            limit=PAGE_SIZE,
        )
        embed, view = audit_page(page, locale, member=member_id, action=kind)
        await interaction.response.send_message(
            embed=embed,
            view=view,
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )


def _fit(lines: list[str], limit: int = 4000) -> str:
    """As many whole lines as an embed description holds."""
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit:
            out.append("…")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)
