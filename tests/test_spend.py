"""Spend in money: the price table, ``/hailuo-admin usage`` in dollars on a seeded history,
and a money budget that refuses a job before anything is charged.

Through the real bot, the Discord simulator and the MiniMax simulator; the history is
seeded as rows in the bot's own SQLite file, beside a video the bot really delivers.
"""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from cogs.spend import money_chart
from hailuo.model.errors import UserInputError
from hailuo.money.prices import parse_usd, usd
from hailuo.money.spend import MoneyReport
from providers.registry import TABLE
from storage.db import Database
from tests.discord_sim import DiscordSimulator
from tests.e2e import card_shows, channel, running_bot
from tests.moderation_e2e import said
from tests.pg_server import BOTH_ENGINES
from tests.sims.minimax import MiniMaxSimulator
from tests.test_admin import MEMBER, admin

ENGINES = BOTH_ENGINES

pytestmark = pytest.mark.timeout(60)

DAY = 86_400.0
SEED_JOB = """
INSERT INTO jobs (guild_id, channel_id, user_id, status, spec, cost, period, provider,
                  created_at, updated_at)
VALUES (:guild, 1, :user, :status, :spec, 1, 'seed', :provider, :at, :at)
"""


def spec(resolution: str, duration: int = 6) -> str:
    return (
        '{"mode": "text", "prompt": "seed", "model": "MiniMax-Hailuo-02", '
        f'"resolution": "{resolution}", "duration": {duration}}}'
    )


async def seed(db: Database, guild_id: int, rows: list[tuple[str, str, str, float]]) -> None:
    """(status, provider, resolution, created_at) rows of this server's history."""
    async with db.transaction() as tx:
        for status, provider, resolution, at in rows:
            await tx.execute(
                SEED_JOB,
                {
                    "guild": guild_id,
                    "user": MEMBER + 9,
                    "status": status,
                    "spec": spec(resolution),
                    "provider": provider,
                    "at": at,
                },
            )


@pytest.fixture
def spend_env(env: dict[str, str]) -> dict[str, str]:
    """MiniMax (the simulator) first, Freepik second (never reached: MiniMax delivers)."""
    return {
        **env,
        "HAILUO_PROVIDERS": "minimax,freepik",
        "FREEPIK_API_KEY": "fp-unused",
        "FREEPIK_BASE_URL": "http://127.0.0.1:9",
    }


def test_spend_dollars_are_read_and_printed_exactly() -> None:
    assert parse_usd("0.28") == 280_000
    assert parse_usd("$1.5") == 1_500_000
    assert parse_usd(" 0,045 ") == 45_000
    assert usd(280_000) == "$0.28" and usd(45_000) == "$0.045" and usd(0) == "$0.00"
    for bad in ("abc", "-1", "0.0000001", "nan", "2000000"):
        with pytest.raises(UserInputError) as caught:
            parse_usd(bad)
        assert caught.value.rule == "admin.usd_invalid"


def test_spend_chart_stacks_providers_and_draws_the_budget_line() -> None:
    first = datetime(2026, 11, 1, tzinfo=UTC).date()
    days = [(first.replace(day=i + 1), {"minimax": 280_000 * (i % 3)}) for i in range(30)]
    days[4] = (days[4][0], {"minimax": 280_000, "freepik": 350_000})
    report = MoneyReport(days, {}, 0, 0, 0, daily_budget=500_000, monthly_budget=None)
    image = Image.open(io.BytesIO(money_chart(report, "USD per day")))
    colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=100_000) or []}
    assert (0x58, 0x65, 0xF2) in colours and (0x57, 0xF2, 0x87) in colours  # two providers
    assert (0xD8, 0x3C, 0x3E) in colours  # the daily money budget


async def test_spend_usage_shows_money_per_day_and_provider_on_a_seeded_history(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, spend_env: dict[str, str]
) -> None:
    guild_id = discord_sim.guilds[0].id
    async with running_bot(spend_env) as app:
        # No price is stated in the project's references: unknown until the owner sets one.
        inter = await admin(discord_sim, "prices")
        assert "minimax · MiniMax-Hailuo-02 768P 6 s · unknown" in said(inter)
        assert "set it with `/hailuo-admin price provider:" in said(inter)
        for provider, resolution, price in [
            ("minimax", "768P", "0.28"),
            ("minimax", "1080P", "0.49"),
            ("freepik", "768P", "0.35"),
        ]:
            inter = await admin(
                discord_sim,
                "price",
                {"provider": provider, "resolution": resolution, "duration": 6, "usd": price},
            )
            assert said(inter) == (
                f"{provider}: MiniMax-Hailuo-02 {resolution} 6 s now costs ${price} a video here."
            )
        inter = await admin(discord_sim, "prices")
        assert "minimax · MiniMax-Hailuo-02 768P 6 s · $0.28 *" in said(inter)
        assert "freepik · MiniMax-Hailuo-02 1080P 6 s · unknown" in said(inter)

        # One video the bot really makes (MiniMax, 768P 6 s)...
        inter = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "a cat"})
        await inter.wait_response()
        await discord_sim.wait_for(lambda: channel(discord_sim).videos() or None)
        # The video is posted before the job is recorded delivered; its card says so after.
        await card_shows(discord_sim, inter.original_message, "Delivered")
        # ...and a seeded history around it.
        now = time.time()
        await seed(
            app.bot.services.db,
            guild_id,
            [
                ("delivered", "minimax", "768P", now - 60),
                ("delivered", "freepik", "768P", now - 50),
                ("failed", "minimax", "768P", now - 40),  # refunded: costs the owner nothing
                ("delivered", "minimax", "1080P", now - DAY),
                ("delivered", "freepik", "1080P", now - DAY),  # no price known: unpriced
                ("delivered", "minimax", "768P", now - 40 * DAY),  # outside the 30 days
            ],
        )
        report = await app.bot.desk.usage(guild_id)
        inter = await admin(discord_sim, "usage")
    money = report.money
    assert money is not None
    assert money.days[-1][1] == {"minimax": 560_000, "freepik": 350_000}
    assert money.days[-2][1] == {"minimax": 490_000}
    assert sum(1 for _, spend in money.days if spend) == 2
    assert money.providers == {"freepik": (350_000, 1), "minimax": (1_050_000, 3)}
    assert money.unpriced == 1 and money.today == 910_000
    yesterday_in_month = datetime.fromtimestamp(now - DAY, UTC).month == (
        datetime.fromtimestamp(now, UTC).month
    )
    assert money.month == 910_000 + (490_000 if yesterday_in_month else 0)
    text = said(inter)
    assert "Money (estimated from the price table): today $0.91 (budget: none)" in text
    assert "minimax: $1.05 over the last 30 days (3 delivered)" in text
    assert "freepik: $0.35 over the last 30 days (1 delivered)" in text
    assert "Delivered videos at a price nobody set, not counted: 1." in text
    assert [f.filename for f in inter.response_files] == ["usage.png", "money.png"]


async def test_spend_money_budget_refuses_before_charging(
    discord_sim: DiscordSimulator, minimax: MiniMaxSimulator, spend_env: dict[str, str]
) -> None:
    guild_id = discord_sim.guilds[0].id
    async with running_bot(spend_env) as app:
        for provider in ("minimax", "freepik"):
            await admin(
                discord_sim,
                "price",
                {"provider": provider, "resolution": "768P", "duration": 6, "usd": "0.28"},
            )
        inter = await admin(discord_sim, "budget", {"daily_usd": "0.50"})
        assert said(inter).endswith("Server money budget: $0.50 a day, none a month.")
        assert (await app.bot.desk.policy(guild_id)).daily_money_budget == 500_000

        first = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "one"}, user_id=MEMBER)
        await first.wait_response()
        assert not first.ephemeral  # $0.28 of $0.50: accepted
        second = await discord_sim.send_slash(["hailuo", "text"], {"prompt": "two"}, user_id=MEMBER)
        await second.wait_response()
        assert second.ephemeral
        assert said(second).startswith(
            "This server's money budget for today cannot cover this video ($0.28 of $0.50 spent; "
            "this video costs up to $0.28). Nothing was charged."
        )
        # Nothing reserved for the refused one: one job, one reservation, one submit at most.
        jobs = await app.bot.desk.jobs.recent_for_member(guild_id, MEMBER)
        assert len(jobs) == 1
        assert (await app.bot.desk.balance(guild_id, MEMBER)).remaining == 9
        assert len(minimax.submits) <= 1

        # A typo in a money budget is one sentence and changes nothing.
        inter = await admin(discord_sim, "budget", {"daily_usd": "five", "daily": 40})
        assert said(inter).startswith("Write an amount in US dollars such as 0.28")
        policy = await app.bot.desk.policy(guild_id)
        assert policy.daily_budget is None and policy.daily_money_budget == 500_000
        # 0 removes it, and the second video fits again.
        await admin(discord_sim, "budget", {"daily_usd": "0"})
        third = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": "three"}, user_id=MEMBER
        )
        await third.wait_response()
        assert not third.ephemeral


def test_spend_readme_dates_the_price_table_and_each_provider_s_defaults() -> None:
    """The README's price table is dated and names every provider; a provider that
    declares no price reads "unknown" there (never a made-up number)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    heading = re.search(r"Prices as read on (\d{4}-\d{2}-\d{2})", readme)
    assert heading is not None
    section = readme[
        heading.end() : readme.index("\n\n", readme.index("| provider |", heading.end()))
    ]
    rows = {
        line.split("|")[1].strip().lower().replace(".", ""): line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| provider")
    }
    for name, capability in TABLE.items():
        if name == "demo":
            continue
        assert name in rows, name
        if not capability.prices:
            assert "unknown" in rows[name], rows[name]
