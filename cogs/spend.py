"""``/hailuo-admin`` in money: the budgets (credits and dollars), each provider's price of a
video, the price table, and the money part of ``usage``.

A mixin of the one ``/hailuo-admin`` group cog (``cogs.admin.AdminCommands``), like
``cogs.moderation``. The figures are estimates: the providers' declared prices (or the
server's own, ``price``) times the videos each delivered (``hailuo.money.spend``).
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

from hailuo.i18n.messages import render
from hailuo.jobs.desk import UsageReport
from hailuo.model.errors import UserInputError
from hailuo.model.spec import DEFAULT_MODEL
from hailuo.money.prices import parse_usd, usd
from hailuo.money.quotas import QuotaPolicy
from hailuo.money.spend import MoneyReport

if TYPE_CHECKING:
    from bot import HailuoBot
    from hailuo.money.quotas import GuildPolicies


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserInputError("error.guild_only")
    return interaction.guild_id


def _or_none(value: int | None, locale: str) -> str:
    return str(value) if value is not None else render("admin.none", locale)


def _usd_or_none(micros: int | None, locale: str) -> str:
    return usd(micros) if micros is not None else render("admin.none", locale)


def _price_text(micros: int | None, locale: str) -> str:
    return usd(micros) if micros is not None else render("admin.price.unknown", locale)


def describe_prices(policy: QuotaPolicy, defaults: QuotaPolicy, locale: str) -> str:
    """Every price a configured provider could charge; ``*`` marks the server's own."""
    lines = [render("admin.prices.title", locale)]
    for key, micros in policy.price_table().items():
        provider, model, resolution, duration = key
        own = micros is not None and defaults.prices.get(key) != micros
        lines.append(
            render(
                "admin.prices.line",
                locale,
                provider=provider,
                model=model,
                resolution=resolution,
                duration=duration,
                price=_price_text(micros, locale),
                mark=" *" if own else "",
            )
        )
    if None in policy.price_table().values():
        lines.append(render("admin.prices.unknown_hint", locale))
    return "\n".join(lines)


def money_policy(policy: QuotaPolicy, interaction: discord.Interaction) -> str:
    """The policy's line (with its newline) on the server's money budgets."""
    locale = str(interaction.locale)
    return "\n" + render(
        "admin.policy_money",
        locale,
        daily=_usd_or_none(policy.daily_money_budget, locale),
        monthly=_usd_or_none(policy.monthly_money_budget, locale),
    )


def money_lines(money: MoneyReport, locale: str) -> list[str]:
    """The money part of ``usage``: today and this month against the money budgets, per
    provider, and how many delivered videos had no price to count."""
    lines = [
        render(
            "admin.usage.money",
            locale,
            today=usd(money.today),
            daily=_usd_or_none(money.daily_budget, locale),
            month=usd(money.month),
            monthly=_usd_or_none(money.monthly_budget, locale),
        )
    ]
    for provider, (micros, videos) in money.providers.items():
        lines.append(
            render(
                "admin.usage.money_provider",
                locale,
                provider=provider,
                money=usd(micros),
                videos=videos,
            )
        )
    if not money.providers:
        lines.append(render("admin.usage.money_none", locale))
    if money.unpriced:
        lines.append(render("admin.usage.money_unpriced", locale, count=money.unpriced))
    return lines


#: Bar colours of the providers in the money chart (by position in the legend).
_PROVIDER_COLOURS = ("#5865F2", "#57F287", "#FEE75C", "#EB459E", "#ED4245", "#99AAB5")


def money_chart(money: MoneyReport, title: str) -> bytes:
    """Estimated dollars per day, one stacked colour per provider, the daily money budget
    as a red line."""
    width, height, left, right, top, bottom = 900, 360, 64, 20, 36, 64
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    providers = sorted({name for _, spend in money.days for name in spend})
    colours = {
        name: _PROVIDER_COLOURS[i % len(_PROVIDER_COLOURS)] for i, name in enumerate(providers)
    }
    totals = [sum(spend.values()) for _, spend in money.days]
    peak = max([*totals, money.daily_budget or 0, 1])
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    slot = plot_w / len(money.days)
    draw.text((left, 10), title, fill="black", font=font)
    draw.line([(left, top), (left, base), (left + plot_w, base)], fill="black")
    for y_value in (0, peak // 2, peak):
        y = base - plot_h * y_value / peak
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((4, y - 6), usd(y_value), fill="black", font=font)
    for i, (day, spend) in enumerate(money.days):
        x = left + i * slot
        y = float(base)
        for name in providers:
            if spend.get(name):
                bar = plot_h * spend[name] / peak
                draw.rectangle(
                    [(x + slot * 0.15, y - bar), (x + slot * 0.85, y)], fill=colours[name]
                )
                y -= bar
        if i % 5 == 0 or i == len(money.days) - 1:
            draw.text((x, base + 8), day.strftime("%m-%d"), fill="black", font=font)
    if money.daily_budget:
        y = base - plot_h * money.daily_budget / peak
        draw.line([(left, y), (left + plot_w, y)], fill="#d83c3e", width=2)
    x = left
    for name in providers:  # the legend
        draw.rectangle([(x, height - 22), (x + 10, height - 12)], fill=colours[name])
        draw.text((x + 14, height - 24), name, fill="black", font=font)
        x += 24 + 7 * len(name)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def money_part(report: UsageReport, locale: str, lines: list[str]) -> list[discord.File]:
    """Adds the money lines to ``usage``'s text and returns its money chart."""
    if report.money is None:
        return []
    lines += money_lines(report.money, locale)
    title = render("admin.usage.money_chart_title", locale, timezone=report.timezone)
    png = await asyncio.to_thread(money_chart, report.money, title)
    return [discord.File(io.BytesIO(png), "money.png")]


class SpendAdminCommands(commands.Cog):
    """The money commands of ``/hailuo-admin``; mixed into ``cogs.admin.AdminCommands``."""

    bot: HailuoBot
    policies: GuildPolicies

    async def _say(self, interaction: discord.Interaction, text: str) -> None:
        none = discord.AllowedMentions.none()
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=none)

    @app_commands.command(
        name="budget", description="The whole server's credits (or US dollars) per day/month"
    )
    @app_commands.describe(
        daily="Credits a day (0 removes)",
        monthly="Credits a month (0 removes)",
        daily_usd="US dollars a day at the providers' prices, e.g. 5 (0 removes)",
        monthly_usd="US dollars a month at the providers' prices, e.g. 100 (0 removes)",
    )
    async def budget(
        self,
        interaction: discord.Interaction,
        daily: int | None = None,
        monthly: int | None = None,
        daily_usd: str | None = None,
        monthly_usd: str | None = None,
    ) -> None:
        locale = str(interaction.locale)
        guild_id = _guild_id(interaction)
        # Both read before anything is written: a typo in one changes neither.
        money_daily = parse_usd(daily_usd) if daily_usd is not None else None
        money_monthly = parse_usd(monthly_usd) if monthly_usd is not None else None
        policy = await self.policies.set_budget(
            guild_id, interaction.user.id, daily=daily, monthly=monthly
        )
        if money_daily is not None or money_monthly is not None:
            policy = await self.policies.set_money_budget(
                guild_id, interaction.user.id, daily=money_daily, monthly=money_monthly
            )
        text = render(
            "admin.budget.done",
            locale,
            daily=_or_none(policy.daily_budget, locale),
            monthly=_or_none(policy.monthly_budget, locale),
        )
        if policy.daily_money_budget is not None or policy.monthly_money_budget is not None:
            money = render(
                "admin.money_budget.done",
                locale,
                daily=_usd_or_none(policy.daily_money_budget, locale),
                monthly=_usd_or_none(policy.monthly_money_budget, locale),
            )
            text = f"{text}\n{money}"
        await self._say(interaction, text)

    @app_commands.command(name="price", description="What one video costs you at a provider")
    @app_commands.describe(
        provider="One of this bot's providers",
        usd="US dollars per video, e.g. 0.28 (leave empty for the provider's declared price)",
        model="Default: Hailuo-02",
    )
    async def price(
        self,
        interaction: discord.Interaction,
        provider: str,
        resolution: Literal["512P", "768P", "1080P"],
        duration: Literal[6, 10],
        usd: str | None = None,
        model: str = DEFAULT_MODEL,
    ) -> None:
        locale = str(interaction.locale)
        micros = parse_usd(usd) if usd is not None else None
        key = (provider, model, resolution, duration)
        policy = await self.policies.set_price(
            _guild_id(interaction), key, micros, interaction.user.id
        )
        text = render(
            "admin.price.done",
            locale,
            provider=provider,
            model=model,
            resolution=resolution,
            duration=duration,
            price=_price_text(policy.prices.get(key), locale),
        )
        await self._say(interaction, text)

    @price.autocomplete("provider")
    async def _provider_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=name, value=name)
            for name in self.policies.defaults.priced_providers
            if current.lower() in name.lower()
        ]

    @app_commands.command(name="prices", description="The price table: one video per provider")
    async def prices(self, interaction: discord.Interaction) -> None:
        locale = str(interaction.locale)
        policy = await self.bot.desk.policy(_guild_id(interaction))
        await self._say(interaction, describe_prices(policy, self.policies.defaults, locale))
