"""Look-alike letters and split letters (issue 11, finding 12): TR39 confusables folded.

"kіll" with a Cyrillic і, "kiII" with capital I for l and "kil l" are refused;
"class" still passes with "ass" listed; Chinese is never mapped and a Russian
prompt stays Russian; the prompt sent to the provider is the member's own.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailuo.moderation.folding import fold, screen_views
from hailuo.moderation.screening import Blocklist, compile_entry
from tests.e2e import SimSetup, running_bot
from tests.moderation_e2e import admin, generate, moderated_guild, said
from tests.test_moderation import BLOCKED, CONTEXTS, WORDS, confusable_evasions, entry

CONFUSABLE_CORPUS = sorted({(w, e) for w in BLOCKED for e in confusable_evasions(w)})


def blocklist(*texts: str) -> Blocklist:
    return Blocklist(compile_entry(entry(t)) for t in texts)


@pytest.mark.parametrize(("word", "evasion"), CONFUSABLE_CORPUS)
def test_confusable_lookalikes_and_split_letters_are_refused(word: str, evasion: str) -> None:
    for context in CONTEXTS:
        prompt = context.format(evasion)
        assert WORDS.match(prompt) is not None, f"{prompt!r} (folded {fold(prompt)!r}) passed"


def test_confusable_the_issue_examples() -> None:
    kill = blocklist("kill")
    for prompt in ("k\u0456ll", "kiII", "kil l", "the kіll switch", "KlLL", "a k ill"):
        assert kill.match(prompt) is not None, prompt
    assert len(CONFUSABLE_CORPUS) > 25


def test_confusable_a_word_wholly_in_lookalikes_is_read_as_latin_in_latin_text() -> None:
    cat = blocklist("cat", "sex")
    assert cat.match("a photo of a \u0441\u0430\u0442 on a table") is not None  # сат, Cyrillic
    assert cat.match("\u0455\u0435\u0445 scene") is not None  # ѕех
    # A Russian prompt is Russian: "сат" alone is not read as Latin.
    assert cat.match("\u0441\u0430\u0442") is None


@pytest.mark.parametrize(
    "prompt",
    [
        "\u0441lass",  # Cyrillic с: "class", which "ass" spares
        "a cl\u0430ss in the rain",
        "sk\u0456ll",
        "a \u0441atalog of badges",
        "ca t",  # a short word is never joined to a lone letter
        "he'll be fine",  # an apostrophe leaves "ll", not a lone letter
        "it's hit by a car",  # a contraction's letter is not split off "shit"
        "that\u2019s hot",
        "a b c d",
        "\u043a\u043e\u0442 \u0432 \u0441\u0430\u043f\u043e\u0433\u0430\u0445",  # кот в сапогах
        "McIntosh apples",
        "一只猫坐在桌子上，镜头慢慢推近",
    ],
)
def test_confusable_near_misses_pass(prompt: str) -> None:
    assert blocklist(*BLOCKED, "hell", "shit", "shot").match(prompt) is None, fold(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "一只猫坐在桌子上，镜头慢慢推近",
        "AI生成的视频：夕阳下的海边",
        "海螺视频，4K画质",
        "桜の下で猫が眠る",
        "고양이가 잔다",
    ],
)
def test_confusable_chinese_and_other_unspaced_prompts_are_not_mangled(prompt: str) -> None:
    """No look-alike reading touches them, and every ideograph is screened as written."""
    folded = fold(prompt)
    assert folded == fold(prompt, confusables=False) == fold(prompt, confusables=True)
    ideographs = [ch for ch in prompt if unicodedata.name(ch, "").startswith("CJK")]
    assert ideographs == [ch for ch in folded if unicodedata.name(ch, "").startswith("CJK")]
    assert blocklist(*BLOCKED).match(prompt) is None


def test_confusable_entries_of_other_scripts_still_meet_their_own_words() -> None:
    russian = blocklist("\u0441\u0443\u043a\u0430")  # сука
    for prompt in (
        "\u0441\u0443\u043a\u0430",  # alone
        "a \u0441\u0443\u043a\u0430 here",  # in an English prompt, where it also reads "cyka"
        "\u0441\u0443\u043aa",  # a Latin a hidden in it
    ):
        assert russian.match(prompt) is not None, prompt
    chinese = blocklist("杀人")
    assert chinese.match("AI视频：一个杀人的场景") is not None
    assert chinese.match("一个安静的湖") is None


LETTERS = (
    "abcdeiklostxIl1! .-'"
    "\u0430\u0441\u0435\u0456\u043a\u043e\u0440\u0441\u0442\u0443\u0445\u0455"  # Cyrillic
    "\u03b1\u03b9\u03ba\u03bf\u03c1\u03c3\u03c2\u03bd"  # Greek
    "\u0251\u026a\u0280\u0131\u00e6"  # Latin look-alikes
    "杀人猫ｋＩ\ufdfa\u2177\u200b\u0301"
)


@given(st.one_of(st.text(), st.text(alphabet=st.sampled_from(LETTERS), max_size=60)))
def test_confusable_folding_is_idempotent_and_never_raises(text: str) -> None:
    for mode in (None, True, False):
        folded = fold(text, confusables=mode)
        assert fold(folded, confusables=mode) == folded
        assert folded == folded.strip() and "  " not in folded
    # The default reading sits between none and all of the look-alikes.
    assert fold(fold(text), confusables=True) == fold(text, confusables=True)
    screen_views(text)
    WORDS.match(text)


@pytest.fixture
def sim_setup() -> SimSetup:
    return SimSetup.held([moderated_guild()])


@pytest.mark.timeout(60)
async def test_confusable_folding_touches_only_the_screened_copy(discord_sim, minimax, env) -> None:
    """The provider gets the member's prompt as typed, look-alikes and all."""
    prompt = "a \u0441ozy k\u0456tchen with a \u0441\u0430\u0442 on the sill, 猫, ＳＬＯＷ"
    async with running_bot(env):
        for word in ("kill", "dog"):
            await admin(discord_sim, ["blocklist", "add"], {"kind": "word", "text": word})
        refused = await generate(discord_sim, "a k\u0456ll scene")
        assert refused.ephemeral and "server word list" in said(refused)
        inter = await generate(discord_sim, prompt)
        assert not inter.ephemeral, said(inter)
        await discord_sim.wait_for(lambda: minimax.submits)
        assert [body["prompt"] for body in minimax.submits] == [prompt]
