"""The message catalog: every code in every language, with the same placeholders and markup."""

from __future__ import annotations

import re
import string

import pytest

from cogs.translator import COMMAND_NAMES
from hailuo.i18n.messages import CATALOG, FALLBACK_LOCALE, expand_words, placeholders, render

EN = CATALOG[FALLBACK_LOCALE]
TRANSLATIONS = sorted(locale for locale in CATALOG if locale != FALLBACK_LOCALE)

#: Discord markup a translation must carry over untouched: mentions, timestamps, bold, code.
_MARKUP = re.compile(r"<(?:@&?|#)\{\w+\}>|<t:\{\w+\}:\w>|\*\*|`")
#: A command as an English text names it: ``/hailuo quota``, ``/hailuo-admin blocklist list``.
_COMMAND = re.compile(r"/(hailuo(?:-admin)?(?: [a-z_-]+)*)")


def _fields(template: str) -> dict[str, str]:
    """Each placeholder's format spec (``{limit:,}`` -> ``{"limit": ","}``)."""
    return {
        name: spec or ""
        for _, name, spec, _ in string.Formatter().parse(template)
        if name is not None
    }


def _comparable(translated: str, english: str) -> dict[str, str]:
    """The translation's specs, counting a bare ``{n}`` as English's ``{n:@noun}``."""
    fields = _fields(translated)
    for name, spec in _fields(english).items():
        if spec.startswith("@") and fields.get(name) == "":
            fields[name] = spec
    return fields


def dummy_params(template: str) -> dict[str, object]:
    """A value of the right type for each placeholder: a number where a format spec wants one."""
    params: dict[str, object] = {}
    for name, spec in _fields(template).items():
        if not spec:
            params[name] = f"<{name}>"
        elif spec[-1:] in ("f", "e", "g", "%"):
            params[name] = 1234.5
        else:  # ",", "+d", "d", widths: integers
            params[name] = 12345
    return params


def test_english_is_the_fallback_and_zh_cn_is_registered() -> None:
    assert "zh-CN" in CATALOG
    assert render("status.queued", "zh-CN") == "排队中"
    assert render("status.queued", "en-US") == "Queued"


@pytest.mark.parametrize("locale", ["zh-TW", "zh-HK", "zh", "fr", None, ""])
def test_other_locales_fall_back_to_english(locale: str | None) -> None:
    assert render("status.queued", locale) == EN["status.queued"]


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_every_english_code_is_translated(locale: str) -> None:
    missing = sorted(set(EN) - set(CATALOG[locale]))
    assert missing == [], f"{locale} lacks {len(missing)} code(s): {missing}"


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_no_translation_has_a_code_english_lacks(locale: str) -> None:
    extra = sorted(set(CATALOG[locale]) - set(EN))
    assert extra == [], f"{locale} has code(s) English lacks: {extra}"


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_placeholders_match_english(locale: str) -> None:
    table = CATALOG[locale]
    wrong = [
        code for code in EN if code in table and placeholders(table[code]) != placeholders(EN[code])
    ]
    assert wrong == [], f"{locale}: placeholders differ from English in {wrong}"
    # the same format spec too: "{limit}" where English says "{limit:,}" is a drift
    # ... except a plural noun ({cost:@credit}): a language with one form may write "{cost} 积分"
    specs = [
        code
        for code in EN
        if code in table and _comparable(table[code], EN[code]) != _fields(EN[code])
    ]
    assert specs == [], f"{locale}: format specs differ from English in {specs}"


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_discord_markup_matches_english(locale: str) -> None:
    table = CATALOG[locale]
    wrong = [
        code
        for code in EN
        if code in table
        and sorted(_MARKUP.findall(table[code])) != sorted(_MARKUP.findall(EN[code]))
    ]
    assert wrong == [], f"{locale}: mentions, timestamps or ** differ from English in {wrong}"


@pytest.mark.parametrize("locale", sorted(CATALOG))
def test_every_template_renders_with_typed_params(locale: str) -> None:
    broken = []
    for code, template in CATALOG[locale].items():
        params = dummy_params(template)
        try:
            # strict: a wrong spec or stray brace raises
            expected = expand_words(template, params, locale).format(**params)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            broken.append(f"{code}: {exc!r}")
            continue
        # render takes the same path: no "?" for a missing parameter, no dropped spec
        if not expected.strip() or render(code, locale, **params) != expected:
            broken.append(code)
    assert broken == [], f"{locale}: {broken}"


@pytest.mark.parametrize("locale", sorted(CATALOG))
def test_delivery_texts_keep_the_marker_find_delivery_looks_for(locale: str) -> None:
    # cogs.notifier.find_delivery recognises an earlier post by "(job #N)" after a crash.
    for code in ("delivery.posted", "delivery.link"):
        assert "(job #42)" in render(code, locale, job_id=42, user_id=1, reason="r", url="u")


def test_commands_are_named_as_zh_cn_members_see_them() -> None:
    """A text that names a command names it by its zh-CN name (cogs/translator.py)."""
    wrong = []
    for code, english in EN.items():
        template = CATALOG["zh-CN"].get(code, "")
        for match in _COMMAND.finditer(english):
            words = match.group(1).split(" ")
            path = [words[0]]
            for word in words[1:]:  # "/hailuo quota shows ..." names /hailuo quota
                if word not in COMMAND_NAMES:
                    break
                path.append(word)
            localized = "/" + " ".join(COMMAND_NAMES[word] for word in path)
            if localized not in template:
                wrong.append(f"{code}: expected {localized}")
    assert wrong == []
