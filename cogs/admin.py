"""``/hailuo-admin``: the server's allowances, tiers, budgets, time zone, credits and blocks.

A group of its own, defined once here (``AdminCommands``) and composed from one
mixin per feature, like ``/hailuo``. ``default_permissions(manage_guild)``
only hides it by default; a server's admins can hand it to anyone under
Integrations, so ``interaction_check`` checks Manage Server on every call.
Every answer is ephemeral; every number in it is read back from storage.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image, ImageDraw, ImageFont

from cogs.account import cost_list
from cogs.moderation import ModerationAdminCommands
from cogs.results import ResultsAdminCommands, results_line
from cogs.spend import SpendAdminCommands, money_part, money_policy
from hailuo.i18n.messages import render
from hailuo.jobs.desk import UsageReport
from hailuo.model.errors import UserInputError
from hailuo.model.spec import DEFAULT_MODEL, MODEL_RULES
from hailuo.money.quotas import AllowancePeriod, QuotaPolicy, timezone_names

if TYPE_CHECKING:
    from bot import HailuoBot
    from hailuo.money.quotas import GuildPolicies

Period = Literal["day", "week"]


def _roles(member: discord.abc.Snowflake) -> frozenset[int]:
    """A member option's roles (their tier); a bare user or id has none we can see."""
    roles = getattr(member, "roles", None) or []
    return frozenset(role.id for role in roles)


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id


def _or_none(value: int | None, locale: str) -> str:
    return str(value) if value is not None else render("admin.none", locale)


def _seconds(seconds: int, locale: str) -> str:
    return (
        render("admin.seconds", locale, seconds=seconds) if seconds else render("admin.off", locale)
    )


def describe_policy(policy: QuotaPolicy, locale: str) -> str:
    tiers = ", ".join(f"<@&{role}> {credits}" for role, credits in policy.tiers.items())
    channel = f"<#{policy.notice_channel_id}>" if policy.notice_channel_id else None
    return render(
        "admin.policy",
        locale,
        allowance=policy.daily_credits,
        period=render(f"admin.period.{policy.period.value}", locale),
        timezone=policy.timezone,
        tiers=tiers or render("admin.none", locale),
        daily=_or_none(policy.daily_budget, locale),
        monthly=_or_none(policy.monthly_budget, locale),
        member_jobs=policy.max_jobs_per_member,
        server_jobs=policy.max_jobs_per_guild,
        cooldown=_seconds(policy.cooldown_seconds, locale),
        channel=channel or render("admin.none", locale),
        costs=cost_list(policy, locale),
    )


def usage_chart(report: UsageReport, title: str) -> bytes:
    """A plain bar chart of credits per day, with the daily budget as a red line."""
    width, height, left, right, top, bottom = 900, 360, 56, 20, 36, 48
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    values = [spent for _, spent in report.days]
    peak = max([*values, report.daily_budget or 0, 1])
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    slot = plot_w / len(values)
    draw.text((left, 10), title, fill="black", font=font)
    draw.line([(left, top), (left, base), (left + plot_w, base)], fill="black")
    for y_value in (0, peak // 2, peak):
        y = base - plot_h * y_value / peak
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((8, y - 6), str(y_value), fill="black", font=font)
    for i, (day, spent) in enumerate(report.days):
        x = left + i * slot
        if spent > 0:
            height_px = plot_h * spent / peak
            draw.rectangle(
                [(x + slot * 0.15, base - height_px), (x + slot * 0.85, base)], fill="#5865F2"
            )
        if i % 5 == 0 or i == len(values) - 1:
            draw.text((x, base + 8), day.strftime("%m-%d"), fill="black", font=font)
    if report.daily_budget:
        y = base - plot_h * report.daily_budget / peak
        draw.line([(left, y), (left + plot_w, y)], fill="#d83c3e", width=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class MoneyAdminCommands(commands.Cog):
    """The money commands of ``/hailuo-admin``; mixed into the group cog below."""

    bot: HailuoBot
    policies: GuildPolicies

    async def _reply(
        self, interaction: discord.Interaction, text: str, files: list[discord.File] | None = None
    ) -> None:
        none = discord.AllowedMentions.none()
        if not files:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=none)
        else:
            await interaction.response.send_message(
                text, files=files, ephemeral=True, allowed_mentions=none
            )

    @app_commands.command(name="allowance", description="Credits each member gets per period")
    @app_commands.describe(credits="Credits per member", period="Renew every day or every Monday")
    async def allowance(
        self,
        interaction: discord.Interaction,
        credits: app_commands.Range[int, 0, 100_000],
        period: Period = "day",
    ) -> None:
        locale = str(interaction.locale)
        policy = await self.policies.set_allowance(
            _guild_id(interaction), credits, AllowancePeriod(period), interaction.user.id
        )
        when = render(f"admin.period.{policy.period.value}", locale)
        await self._reply(
            interaction, render("admin.allowance.done", locale, credits=credits, period=when)
        )

    @app_commands.command(name="tier", description="Give a role its own allowance (highest wins)")
    @app_commands.describe(
        role="The role (e.g. Creators, Server Booster)", credits="Leave empty to remove"
    )
    async def tier(
        self, interaction: discord.Interaction, role: discord.Role, credits: int | None = None
    ) -> None:
        locale = str(interaction.locale)
        await self.policies.set_tier(_guild_id(interaction), role.id, credits, interaction.user.id)
        if credits is None:
            text = render("admin.tier.removed", locale, role_id=role.id)
        else:
            text = render("admin.tier.done", locale, role_id=role.id, credits=credits)
        await self._reply(interaction, text)

    @app_commands.command(name="timezone", description="Where midnight is for renewals")
    @app_commands.describe(name="An IANA time zone, e.g. Europe/Paris")
    async def timezone(self, interaction: discord.Interaction, name: str) -> None:
        locale = str(interaction.locale)
        guild_id = _guild_id(interaction)
        policy = await self.policies.set_timezone(guild_id, name, interaction.user.id)
        balance = await self.bot.desk.balance(guild_id, interaction.user.id, policy=policy)
        text = render(
            "admin.timezone.done", locale, name=policy.timezone, renews_at=int(balance.renews_at)
        )
        await self._reply(interaction, text)

    @timezone.autocomplete("name")
    async def _timezone_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=n, value=n) for n in timezone_names(current)]

    @app_commands.command(name="limits", description="Jobs in flight and the cool-down")
    @app_commands.describe(
        member_jobs="Jobs in flight per member",
        server_jobs="Jobs in flight for the server",
        cooldown="Seconds between two videos of a member (0 turns it off)",
    )
    async def limits(
        self,
        interaction: discord.Interaction,
        member_jobs: int | None = None,
        server_jobs: int | None = None,
        cooldown: int | None = None,
    ) -> None:
        locale = str(interaction.locale)
        policy = await self.policies.set_limits(
            _guild_id(interaction),
            interaction.user.id,
            member_jobs=member_jobs,
            server_jobs=server_jobs,
            cooldown_seconds=cooldown,
        )
        text = render(
            "admin.limits.done",
            locale,
            member_jobs=policy.max_jobs_per_member,
            server_jobs=policy.max_jobs_per_guild,
            cooldown=_seconds(policy.cooldown_seconds, locale),
        )
        await self._reply(interaction, text)

    @app_commands.command(name="cost", description="What a video costs in this server")
    @app_commands.describe(credits="Leave empty for the default", model="Default: Hailuo-02")
    async def cost(
        self,
        interaction: discord.Interaction,
        resolution: Literal["512P", "768P", "1080P"],
        duration: Literal[6, 10],
        credits: int | None = None,
        model: str = DEFAULT_MODEL,
    ) -> None:
        locale = str(interaction.locale)
        key = (model, resolution, duration)
        policy = await self.policies.set_cost(
            _guild_id(interaction), key, credits, interaction.user.id
        )
        text = render(
            "admin.cost.done",
            locale,
            model=model,
            resolution=resolution,
            duration=duration,
            credits=policy.cost_table()[key],
        )
        await self._reply(interaction, text)

    @cost.autocomplete("model")
    async def _model_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=name, value=name)
            for name in MODEL_RULES
            if current.lower() in name.lower()
        ]

    @app_commands.command(name="channel", description="Where budget notices go")
    @app_commands.describe(channel="Leave empty for this channel")
    async def channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        channel_id = channel.id if channel is not None else interaction.channel_id
        assert channel_id is not None
        await self.policies.set_notice_channel(
            _guild_id(interaction), channel_id, interaction.user.id
        )
        text = render("admin.channel.done", str(interaction.locale), channel_id=channel_id)
        await self._reply(interaction, text)

    @app_commands.command(name="grant", description="Give a member extra credits this period")
    async def grant(
        self,
        interaction: discord.Interaction,
        member: discord.User,
        credits: app_commands.Range[int, 1, 100_000],
        reason: str = "",
    ) -> None:
        await self._adjust(interaction, member, credits, reason, "admin.grant.done")

    @app_commands.command(name="take", description="Take credits back from a member")
    async def take(
        self,
        interaction: discord.Interaction,
        member: discord.User,
        credits: app_commands.Range[int, 1, 100_000],
        reason: str = "",
    ) -> None:
        await self._adjust(interaction, member, -credits, reason, "admin.take.done")

    async def _adjust(
        self,
        interaction: discord.Interaction,
        member: discord.User,
        change: int,
        reason: str,
        done_code: str,
    ) -> None:
        """Grant (or, with a negative ``change``, take) credits for this period."""
        balance = await self.bot.desk.grant(
            _guild_id(interaction),
            member.id,
            change,
            actor_id=interaction.user.id,
            reason=reason,
            roles=_roles(member),
        )
        text = render(
            done_code,
            str(interaction.locale),
            user_id=member.id,
            amount=abs(change),
            remaining=balance.remaining,
        )
        await self._reply(interaction, text)

    @app_commands.command(name="reset", description="Give a member their full allowance again")
    async def reset(self, interaction: discord.Interaction, member: discord.User) -> None:
        balance = await self.bot.desk.reset(
            _guild_id(interaction), member.id, actor_id=interaction.user.id, roles=_roles(member)
        )
        text = render(
            "admin.reset.done",
            str(interaction.locale),
            user_id=member.id,
            remaining=balance.remaining,
        )
        await self._reply(interaction, text)

    @app_commands.command(name="block", description="Stop a member from making videos here")
    async def block(
        self, interaction: discord.Interaction, member: discord.User, reason: str = ""
    ) -> None:
        await self.policies.block(_guild_id(interaction), member.id, interaction.user.id, reason)
        await self._reply(
            interaction, render("admin.block.done", str(interaction.locale), user_id=member.id)
        )

    @app_commands.command(name="unblock", description="Let a blocked member make videos again")
    async def unblock(self, interaction: discord.Interaction, member: discord.User) -> None:
        lifted = await self.policies.unblock(_guild_id(interaction), member.id, interaction.user.id)
        code = "admin.unblock.done" if lifted else "admin.unblock.none"
        await self._reply(interaction, render(code, str(interaction.locale), user_id=member.id))

    @app_commands.command(name="usage", description="Spend per day (30 days) and top members")
    async def usage(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        report = await self.bot.desk.usage(_guild_id(interaction))
        lines = [
            render(
                "admin.usage.summary",
                locale,
                today=report.today,
                daily=_or_none(report.daily_budget, locale),
                month=report.month,
                monthly=_or_none(report.monthly_budget, locale),
                timezone=report.timezone,
            )
        ]
        if report.top:
            lines.append(render("admin.usage.top", locale))
            lines += [
                render("admin.usage.top_line", locale, rank=rank, user_id=user, credits=spent)
                for rank, (user, spent) in enumerate(report.top, start=1)
            ]
        else:
            lines.append(render("admin.usage.nobody", locale))
        title = render("admin.usage.chart_title", locale, timezone=report.timezone)
        png = await asyncio.to_thread(usage_chart, report, title)
        files = [discord.File(io.BytesIO(png), "usage.png")]
        files += await money_part(report, locale, lines)  # money lines, and the money chart
        await self._reply(interaction, "\n".join(lines), files)

    @app_commands.command(name="policy", description="This server's settings, all in one place")
    async def policy(self, interaction: discord.Interaction) -> None:
        policy = await self.bot.desk.policy(_guild_id(interaction))
        results = money_policy(policy, interaction) + await results_line(self.bot, interaction)
        await self._reply(interaction, describe_policy(policy, str(interaction.locale)) + results)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCommands(
    MoneyAdminCommands,
    SpendAdminCommands,
    ModerationAdminCommands,
    ResultsAdminCommands,
    commands.GroupCog,
    group_name="hailuo-admin",
    group_description="Run this server's Hailuo credits, budgets and members",
):
    """The ``/hailuo-admin`` group, defined once; other features add their mixin here."""

    def __init__(self, bot: HailuoBot, policies: GuildPolicies) -> None:
        self.bot = bot
        self.policies = policies
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        permissions = interaction.permissions
        if permissions.manage_guild or permissions.administrator:
            return True
        # The default permission can be overridden per server, so this is the real gate.
        # Raised as the tree's own error type so its handler renders the rule from the
        # catalog like any other refusal (a plain False would read as an incident).
        assert interaction.command is not None
        raise app_commands.CommandInvokeError(
            interaction.command, UserInputError("admin.manage_guild")
        )
