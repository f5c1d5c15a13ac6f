"""The audit log in Discord: one row as a log-channel embed, and pages of rows with buttons.

``audit_embed`` is what ``DiscordNotifier.log_event`` posts for every committed
row. ``audit_page`` renders ``/hailuo-admin audit``: newest first, with Older
and Newer buttons whose ``custom_id`` carries the page's position and filters
(a ``DynamicItem``), so they keep working after a restart. A press is checked
for Manage Server like the command itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import discord

from cogs.errors import answer_privately
from hailuo.clock import to_datetime
from hailuo.i18n.messages import render
from hailuo.records import AuditAction, AuditEntry, AuditPage

if TYPE_CHECKING:
    from bot import HailuoBot

PAGE_SIZE = 10
_FIELD = 1024
_COLOURS = {
    AuditAction.BLOCK: 0xD83C3E,
    AuditAction.STRIKE: 0xE67E22,
    AuditAction.REJECT: 0xD83C3E,
    AuditAction.UNBLOCK: 0x3BA55C,
    AuditAction.APPROVE: 0x3BA55C,
}
_CHANNELS = frozenset({"allowed_channel_ids", "log_channel_id", "notice_channel_id"})
_ROLES = frozenset({"allowed_role_ids", "trusted_role_ids", "moderator_role_id"})


def can_manage(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions
    return permissions.manage_guild or permissions.administrator


def actor_text(actor_id: int | None, locale: str | None) -> str:
    return f"<@{actor_id}>" if actor_id is not None else render("audit.bot", locale)


def _value(key: str, value: Any, locale: str | None) -> str:
    if value is None or value == []:
        return render("modadmin.none", locale)
    if isinstance(value, list):
        return ", ".join(_value(key, v, locale) for v in value)
    if isinstance(value, Mapping):
        return "(" + ", ".join(f"{k}: {_value(k, v, locale)}" for k, v in value.items()) + ")"
    if isinstance(value, int) and not isinstance(value, bool):
        if key in _CHANNELS:
            return f"<#{value}>"
        if key in _ROLES:
            return f"<@&{value}>"
    return str(value)


def detail_lines(details: Mapping[str, Any], locale: str | None) -> list[str]:
    """One line per detail; a setting change reads ``name: old → new``."""
    lines = []
    for key, value in sorted(details.items()):
        if isinstance(value, Mapping) and set(value) == {"old", "new"}:
            old, new = _value(key, value["old"], locale), _value(key, value["new"], locale)
            lines.append(f"{key}: {old} → {new}")
        elif value not in (None, "", [], {}):
            lines.append(f"{key}: {_value(key, value, locale)}")
    return lines


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_embed(entry: AuditEntry, locale: str | None) -> discord.Embed:
    """One audit row, as mirrored to the server's log channel."""
    embed = discord.Embed(
        title=render(f"audit.action.{entry.action.value}", locale),
        colour=_COLOURS.get(entry.action, 0x5865F2),
        timestamp=to_datetime(entry.created_at),
    )
    embed.add_field(name=render("audit.by", locale), value=actor_text(entry.actor_id, locale))
    if entry.target_user_id is not None:
        embed.add_field(name=render("audit.member", locale), value=f"<@{entry.target_user_id}>")
    if entry.job_id is not None:
        embed.add_field(name=render("audit.job_field", locale), value=f"#{entry.job_id}")
    lines = detail_lines(entry.details, locale)
    if lines:
        embed.add_field(
            name=render("audit.details", locale),
            value=_clip("\n".join(lines), _FIELD),
            inline=False,
        )
    embed.set_footer(text=f"#{entry.id}")
    return embed


def audit_line(entry: AuditEntry, locale: str | None) -> str:
    target = (
        render("audit.target", locale, user=f"<@{entry.target_user_id}>")
        if entry.target_user_id is not None
        else ""
    )
    job = render("audit.job", locale, job_id=entry.job_id) if entry.job_id is not None else ""
    line = render(
        "audit.line",
        locale,
        id=entry.id,
        at=int(entry.created_at),
        action=render(f"audit.action.{entry.action.value}", locale),
        actor=actor_text(entry.actor_id, locale),
        target=target,
        job=job,
    )
    details = "; ".join(detail_lines(entry.details, locale))
    return f"{line}\n  {_clip(details, 200)}" if details else line


def audit_page(
    page: AuditPage, locale: str | None, *, member: int | None, action: AuditAction | None
) -> tuple[discord.Embed, discord.ui.View]:
    """The page as an embed, with Older/Newer buttons carrying the filters."""
    lines = [audit_line(entry, locale) for entry in page.entries]
    embed = discord.Embed(
        title=render("audit.title", locale),
        description="\n".join(lines) if lines else render("audit.empty", locale),
        colour=0x5865F2,
    )
    view = discord.ui.View(timeout=None)
    view.add_item(AuditPageButton("o", page.next_before_id, member, action, locale))
    view.add_item(AuditPageButton("n", page.newer_after_id, member, action, locale))
    return embed, view


class AuditPageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"hailuo:audit:(?P<way>[on]):(?P<ref>\d+):(?P<member>\d+):(?P<action>[a-z_]*)",
):
    """Older (``o``: entries before ``ref``) or Newer (``n``: entries after ``ref``)."""

    def __init__(
        self,
        way: str,
        ref: int | None,
        member: int | None,
        action: AuditAction | None,
        locale: str | None = None,
    ) -> None:
        self.way, self.ref, self.member, self.action = way, ref, member, action
        action_text = action.value if action is not None else ""
        super().__init__(
            discord.ui.Button(
                label=render("audit.older" if way == "o" else "audit.newer", locale),
                style=discord.ButtonStyle.secondary,
                custom_id=f"hailuo:audit:{way}:{ref or 0}:{member or 0}:{action_text}",
                disabled=ref is None,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        ref, member = int(match["ref"]), int(match["member"])
        action = AuditAction(match["action"]) if match["action"] else None
        return cls(match["way"], ref or None, member or None, action, str(interaction.locale))

    async def callback(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        if not can_manage(interaction):
            await answer_privately(interaction, render("admin.manage_guild", locale))
            return
        bot: HailuoBot = interaction.client  # type: ignore[assignment]
        audit = bot.services.moderation
        if interaction.guild_id is None or self.ref is None:
            await answer_privately(interaction, render("error.guild_only", locale))
            return
        page = await audit.audit_page(
            interaction.guild_id,
            member=self.member,
            action=self.action,
            before_id=self.ref if self.way == "o" else None,
            after_id=self.ref if self.way == "n" else None,
            limit=PAGE_SIZE,
        )
        if not page.entries and self.way == "n":  # nothing newer any more: the newest page
            page = await audit.audit_page(
                interaction.guild_id, member=self.member, action=self.action, limit=PAGE_SIZE
            )
        embed, view = audit_page(page, locale, member=self.member, action=self.action)
        await interaction.response.edit_message(embed=embed, view=view)
