"""The zh-CN command surface: every name and description translated, within Discord's rules."""

from __future__ import annotations

import unicodedata
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from cogs.admin import AdminCommands
from cogs.commands import HailuoCommands
from cogs.translator import LOCALE, UNCHANGED, HailuoTranslator

ZH = LOCALE.value  # "zh-CN"


def _name_char(char: str) -> bool:
    """One character of ^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]$ (Discord's name rule)."""
    return (
        char in "-_"
        or unicodedata.category(char)[0] in "LN"
        or "\u0900" <= char <= "\u097f"  # Devanagari
        or "\u0e00" <= char <= "\u0e7f"  # Thai
    )


def name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= 32:
        return "must be 1-32 characters"
    if name != name.lower():
        return "must be lowercase"
    if not all(_name_char(c) for c in name):
        return "only letters, digits, - and _"
    return None


def localization_problems(payload: list[dict[str, Any]]) -> list[str]:
    """What a sync payload lacks for zh-CN, or gets wrong by Discord's rules."""
    problems: list[str] = []

    def node(item: dict[str, Any], path: str) -> None:
        name, description = item["name"], item.get("description")
        here = f"{path} {name}".strip()
        zh_name = (item.get("name_localizations") or {}).get(ZH)
        if zh_name is None:
            if name not in UNCHANGED:
                problems.append(f"{here}: no zh-CN name")
        elif (problem := name_problem(zh_name)) is not None:
            problems.append(f"{here}: zh-CN name {zh_name!r} {problem}")
        if description is not None:
            zh_text = (item.get("description_localizations") or {}).get(ZH)
            if zh_text is None:
                if description not in UNCHANGED:
                    problems.append(f"{here}: no zh-CN description for {description!r}")
            elif not 1 <= len(zh_text) <= 100:
                problems.append(f"{here}: zh-CN description longer than 100")
        for choice in item.get("choices", []):
            zh_choice = (choice.get("name_localizations") or {}).get(ZH)
            if zh_choice is None and choice["name"] not in UNCHANGED:
                problems.append(f"{here}: no zh-CN name for choice {choice['name']!r}")
            elif zh_choice is not None and not 1 <= len(zh_choice) <= 100:
                problems.append(f"{here}: zh-CN choice {zh_choice!r} longer than 100")
        children = item.get("options", [])
        zh_names = [
            (child.get("name_localizations") or {}).get(ZH, child["name"]) for child in children
        ]
        if len(set(zh_names)) != len(zh_names):
            problems.append(f"{here}: two options or subcommands share a zh-CN name {zh_names}")
        for child in children:
            node(child, here)

    for command in payload:
        node(command, "")
    return problems


@pytest.fixture
async def tree() -> app_commands.CommandTree[discord.Client]:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    await bot.add_cog(HailuoCommands(bot))  # type: ignore[arg-type]
    await bot.add_cog(AdminCommands(bot, None))  # type: ignore[arg-type]
    await bot.tree.set_translator(HailuoTranslator())
    return bot.tree


async def payload_of(tree: app_commands.CommandTree[discord.Client]) -> list[dict[str, Any]]:
    translator = tree.translator
    assert translator is not None
    return [await c.get_translated_payload(tree, translator) for c in tree.get_commands()]


def test_discord_name_rule() -> None:
    assert name_problem("文生视频") is None
    assert name_problem("海螺管理") is None
    assert name_problem("hailuo-admin") is None
    assert name_problem("Text") == "must be lowercase"
    assert name_problem("two words") == "only letters, digits, - and _"
    assert name_problem("x" * 33) == "must be 1-32 characters"


async def test_every_command_option_and_choice_has_a_zh_cn_text(tree) -> None:
    assert localization_problems(await payload_of(tree)) == []


async def test_the_payload_carries_chinese_names(tree) -> None:
    payload = {c["name"]: c for c in await payload_of(tree)}
    hailuo = payload["hailuo"]
    assert hailuo["name_localizations"] == {"zh-CN": "海螺"}
    text = next(o for o in hailuo["options"] if o["name"] == "text")
    assert text["name_localizations"]["zh-CN"] == "文生视频"
    prompt = next(o for o in text["options"] if o["name"] == "prompt")
    assert prompt["name_localizations"] == {"zh-CN": "提示词"}
    camera = next(o for o in text["options"] if o["name"] == "camera")
    pan = next(c for c in camera["choices"] if c["value"] == "Pan left")
    assert pan["name_localizations"] == {"zh-CN": "左摇"}
    assert payload["hailuo-admin"]["name_localizations"] == {"zh-CN": "海螺管理"}


async def test_other_locales_get_nothing(tree) -> None:
    translator = HailuoTranslator()
    where = app_commands.TranslationContextLocation
    for location, text in ((where.command_name, "text"), (where.parameter_name, "prompt")):
        context = app_commands.TranslationContext(location, None)
        string = app_commands.locale_str(text)
        assert await translator.translate(string, discord.Locale.chinese, context) is not None
        for locale in (discord.Locale.taiwan_chinese, discord.Locale.american_english):
            assert await translator.translate(string, locale, context) is None
