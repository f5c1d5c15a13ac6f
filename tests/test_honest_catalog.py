"""Honest words: plural forms by the catalog's own rules and sizes in megabytes, both languages."""

from __future__ import annotations

import pytest

from hailuo.i18n.messages import CATALOG, megabytes, plural_category, render


@pytest.mark.parametrize(
    ("count", "en", "zh"), [(0, "other", "other"), (1, "one", "other"), (2, "other", "other")]
)
def test_honest_plural_category(count: int, en: str, zh: str) -> None:
    assert plural_category(count, "en-US") == en
    assert plural_category(count, "zh-CN") == zh
    assert plural_category("?", "en-US") == "other"


def test_honest_plural_forms_in_english_and_chinese() -> None:
    assert render("status.cost", cost=1) == "1 credit"
    assert render("status.cost", cost=2) == "2 credits"
    assert render("status.cost", "zh-CN", cost=1) == "1 积分"
    assert render("blocklist.title", count=1) == "Blocklist: 1 entry"
    assert render("blocklist.title", count=3) == "Blocklist: 3 entries"
    text = render("modadmin.strikes_value", threshold=1, days=2)
    assert text == "blocked after 1 provider refusal within 2 days"
    every = "".join(t for table in CATALOG.values() for t in table.values())
    assert "(s)" not in every and "(ies)" not in every


def test_honest_sizes_in_megabytes() -> None:
    assert megabytes(20_000_000) == "20"
    assert megabytes(10_485_760) == "10.49"
    text = render("image.too_big", limit=20_000_000, actual=21_500_000)
    assert text == "The image must be smaller than 20 MB; yours is 21.5 MB."
    assert "20 MB" in render("image.too_big", "zh-CN", limit=20_000_000, actual=21_000_000)
    assert " bytes" not in "".join(CATALOG["en"].values())


@pytest.mark.parametrize("locale", sorted(CATALOG))
def test_honest_every_plural_key_has_both_forms(locale: str) -> None:
    nouns = {code.split(".")[1] for code in CATALOG[locale] if code.startswith("plural.")}
    for noun in nouns:
        assert {f"plural.{noun}.one", f"plural.{noun}.other"} <= set(CATALOG[locale])


#: The catalog keys issue 15's honest messages brought; each must read in both languages.
NEW_KEYS = [
    "plural.credit.one",
    "plural.credit.other",
    "plural.day.one",
    "plural.day.other",
    "plural.refusal.one",
    "plural.refusal.other",
    "plural.entry.one",
    "plural.entry.other",
    "plural.video.one",
    "plural.video.other",
    "unit.megabytes",
    "provider.unsupported",
    "job.service_unreachable",
    "job.tier_not_offered",
    "job.image_not_taken",
    "notice.provider_auth",
    "notice.provider_balance",
    "moderation.strike_notice",
    "moderation.approval_needs_channel",
    # what was still missing of issue 15: money notices, the blocking strike, closed DMs
    "notice.money_budget_day_80",
    "notice.money_budget_day_100",
    "notice.money_budget_month_80",
    "notice.money_budget_month_100",
    "moderation.strike_blocked",
    "delivery.dm_closed",
    "admin.policy_money",
    "admin.prices.unknown_hint",
]


@pytest.mark.parametrize("code", NEW_KEYS)
def test_honest_every_new_key_in_both_languages(code: str) -> None:
    english, chinese = CATALOG["en"][code], CATALOG["zh-CN"][code]
    assert (english.strip() and chinese.strip() and english != chinese) or code == "unit.megabytes"
    params = {"provider": "freepik", "resolution": "768P", "count": 2, "threshold": 3}
    params |= {"days": 7, "job_id": 5, "amount": "20", "user_id": 9, "percent": 80}
    params |= {"spent": "$0.28", "budget": "$0.35", "renews_at": 1, "daily": "$1", "monthly": "-"}
    assert "?" not in render(code, "en", **params)
    assert "?" not in render(code, "zh-CN", **params)
