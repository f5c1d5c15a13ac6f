"""``/hailuo quota`` and ``/hailuo jobs``: what a member has left and made, from the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from hailuo.i18n.messages import CATALOG, FALLBACK_LOCALE, render
from hailuo.model.errors import UserInputError
from hailuo.money.quotas import AllowancePeriod, QuotaPolicy
from hailuo.records import LedgerEntry, LedgerEntryKind

if TYPE_CHECKING:
    from bot import HailuoBot

RECENT_LINES = 5
RECENT_JOBS = 10


def member_roles(interaction: discord.Interaction) -> frozenset[int]:
    """The member's role ids, which pick their allowance tier (boosters hold the booster role)."""
    user = interaction.user
    if not isinstance(user, discord.Member):
        return frozenset()
    roles = {role.id for role in user.roles}
    booster = user.guild.premium_subscriber_role
    if user.premium_since is not None and booster is not None:
        roles.add(booster.id)
    return frozenset(roles)


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id


def cost_list(policy: QuotaPolicy, locale: str | None = None) -> str:
    """The server's costs, model by model: ``Model: 768P 6 s = 1, …; Other: …``."""
    by_model: dict[str, list[str]] = {}
    for (model, res, dur), credits in policy.cost_table().items():
        item = render("cost.item", locale, resolution=res, duration=dur, credits=credits)
        by_model.setdefault(model, []).append(item)
    return "; ".join(
        render("cost.model", locale, model=model, items=items) for model, items in by_model.items()
    )


def ledger_line(entry: LedgerEntry, locale: str | None) -> str:
    """One ledger entry in plain words."""
    at = int(entry.created_at)
    note = f" ({entry.reason})" if entry.reason else ""
    actor = entry.actor_id or 0
    match entry.kind:
        case LedgerEntryKind.RESERVE:
            return render("ledger.reserve", locale, at=at, amount=-entry.delta, job_id=entry.job_id)
        case LedgerEntryKind.CHARGE if entry.reason == "cancelled":
            return render("ledger.charge_cancelled", locale, at=at, job_id=entry.job_id)
        case LedgerEntryKind.CHARGE:
            return render("ledger.charge", locale, at=at, job_id=entry.job_id)
        case LedgerEntryKind.REFUND:
            why = _why(entry.reason, locale)
            return render(
                "ledger.refund", locale, at=at, amount=entry.delta, job_id=entry.job_id, why=why
            )
        case LedgerEntryKind.GRANT if entry.delta < 0:
            return render(
                "ledger.take", locale, at=at, amount=-entry.delta, actor_id=actor, note=note
            )
        case LedgerEntryKind.GRANT:
            return render(
                "ledger.grant", locale, at=at, amount=entry.delta, actor_id=actor, note=note
            )
        case LedgerEntryKind.RESET:
            return render("ledger.reset", locale, at=at, amount=entry.delta, actor_id=actor)
        case _:
            return render("ledger.expire", locale, at=at, amount=entry.delta)


def _why(reason: str, locale: str | None) -> str:
    """A refund's reason: a failure rule or a state word, both in the catalog."""
    table = CATALOG[FALLBACK_LOCALE]
    for code in (reason, f"ledger.why.{reason}"):
        if code in table:
            return render(code, locale)
    return render("ledger.why.failed", locale)


async def quota(bot: HailuoBot, interaction: discord.Interaction) -> None:
    guild_id = _guild_id(interaction)
    locale = str(interaction.locale)
    policy = await bot.desk.policy(guild_id)
    balance = await bot.desk.balance(
        guild_id, interaction.user.id, roles=member_roles(interaction), policy=policy
    )
    weekly = policy.period is AllowancePeriod.WEEK
    lines = [
        render(
            "quota.summary_week" if weekly else "quota.summary",
            locale,
            remaining=balance.remaining,
            allowance=balance.allowance,
            reserved=balance.reserved,
            renews_at=int(balance.renews_at),
        )
    ]
    if balance.adjusted:
        lines.append(render("quota.adjusted", locale, amount=balance.adjusted))
    lines.append(render("quota.costs", locale, costs=cost_list(policy, locale)))
    recent = await bot.desk.recent_ledger(guild_id, interaction.user.id, RECENT_LINES)
    if recent:
        lines.append(render("quota.recent", locale))
        lines += [ledger_line(entry, locale) for entry in recent]
    await interaction.response.send_message(
        "\n".join(lines), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


async def jobs(bot: HailuoBot, interaction: discord.Interaction) -> None:
    guild_id = _guild_id(interaction)
    locale = str(interaction.locale)
    recent = await bot.desk.recent(guild_id, interaction.user.id, RECENT_JOBS)
    lines = [
        render(
            "jobs.line",
            locale,
            job_id=job.id,
            state=render(f"state.{job.status.value}", locale),
            resolution=job.spec.resolution,
            duration=job.spec.duration,
            cost=job.cost,
            at=int(job.created_at),
        )
        for job in recent
    ]
    await interaction.response.send_message(
        "\n".join(lines) or render("jobs.none", locale), ephemeral=True
    )


class AccountCommands(commands.Cog):
    """The member's own commands in ``/hailuo``; mixed into the group cog."""

    bot: HailuoBot

    @app_commands.command(name="quota", description="How many credits you have left")
    async def quota(self, interaction: discord.Interaction) -> None:
        await quota(self.bot, interaction)

    @app_commands.command(name="jobs", description="Your recent videos and their states")
    async def jobs(self, interaction: discord.Interaction) -> None:
        await jobs(self.bot, interaction)
