"""Prompt screening, the approval policy, gating and strikes (hailuo.moderation.screening)."""

from __future__ import annotations

import itertools
import logging
import unicodedata
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailuo.i18n.messages import CATALOG, FALLBACK_LOCALE, placeholders, render
from hailuo.model.errors import ModerationBlocked, UserInputError
from hailuo.model.job import NewJob
from hailuo.model.moderation import DAY, ApprovalMode, Block, ModerationSettings
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.moderation.screening import (
    DEFAULT_LABEL,
    Blocklist,
    blocked_error,
    check_gate,
    compile_entry,
    counts_as_strike,
    fold,
    joined_runs,
    needs_approval,
    record_strike,
    screen_prompt,
    validate_entry,
)
from storage.blocklist import BlocklistEntry, BlocklistKind
from storage.db import Database
from storage.jobs import JobRepository
from storage.moderation import BlockRepository, ModerationSettingsRepository
from tests.pg_server import BOTH_ENGINES
from tests.support import FakeClock

ENGINES = BOTH_ENGINES

BLOCKED = ("cat", "ass", "kill", "bad")


def entry(text: str, kind: BlocklistKind = BlocklistKind.WORD, label: str = "") -> BlocklistEntry:
    return BlocklistEntry(
        id=abs(hash(text)) % 10_000,
        guild_id=1,
        kind=kind,
        text=text,
        label=label,
        added_by=None,
        created_at=0.0,
    )


def blocklist(*texts: str, kind: BlocklistKind = BlocklistKind.WORD) -> Blocklist:
    return Blocklist(compile_entry(entry(t, kind)) for t in texts)


WORDS = blocklist(*BLOCKED)


# --- a generated corpus of evasions ---------------------------------------------------

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
MARKS = ("\u0301", "\u0308", "\u0300", "\u0327", "\u030a")
LEET = {"a": "4@", "s": "5$", "t": "7", "i": "1!", "l": "1", "e": "3", "o": "0", "b": "8"}


def fullwidth(word: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in word)


def styled(word: str, style: str = "BOLD") -> str:
    """Mathematical letters (U+1D400 ...): only NFKC maps them back, capitals to capitals."""
    return "".join(
        unicodedata.lookup(f"MATHEMATICAL {style} {'CAPITAL' if c.isupper() else 'SMALL'} {c}")
        for c in word
    )


def spaced(sep: str) -> Callable[[str], str]:
    return lambda word: sep.join(word)


def leet_variants(word: str) -> Iterator[str]:
    """Every mix of swaps that still reads as a word (has a letter, or no digit at all)."""
    choices = [(c, *LEET.get(c, "")) for c in word]
    for letters in itertools.product(*choices):
        variant = "".join(letters)
        if variant == word:
            continue
        if variant.endswith("!") or variant.startswith("!"):
            continue  # a "!" at a word's edge is punctuation, not an i
        if any(c.isalpha() for c in variant) or not any(c.isdigit() for c in variant):
            yield variant


#: Letters of other scripts that look like Latin ones (Unicode TR39 confusables).
LOOKALIKES = {
    "a": "аαɑ",  # Cyrillic a, Greek alpha, Latin alpha
    "b": "Ьь",  # Cyrillic soft sign
    "c": "с",  # Cyrillic es
    "d": "ԁ",  # Cyrillic komi de
    "i": "іιɪ",  # Cyrillic i, Greek iota, small capital I
    "k": "кκ",  # Cyrillic ka, Greek kappa
    "s": "ѕ",  # Cyrillic dze
    "t": "т",  # Cyrillic te
}


def confusable_evasions(word: str) -> Iterator[str]:
    """Look-alike letters (one or all but one), a capital I for an l, and one letter split off."""
    for i, ch in enumerate(word):
        for lookalike in LOOKALIKES.get(ch, ""):
            yield word[:i] + lookalike + word[i + 1 :]
            others = "".join(LOOKALIKES.get(c, c)[0] for c in word[i + 1 :])
            if others != word[i + 1 :]:  # every later letter swapped too, one Latin letter kept
                yield word[: i + 1] + others
        if ch == "l" and i > 0:
            yield word[:i] + "I" + word[i + 1 :]  # "kiIl": a capital I reads as l
    if "l" in word:
        yield word.replace("l", "I")  # "kiII"
    if len(word) >= 4:  # long words only: "ca t" is not "cat", but "kil l" is "kill"
        yield f"{word[:-1]} {word[-1]}"
        yield f"{word[0]} {word[1:]}"


def evasions(word: str) -> Iterator[str]:
    yield from confusable_evasions(word)
    yield word.upper()
    yield word.title()
    yield fullwidth(word)
    yield fullwidth(word.upper())
    for style in ("BOLD", "BOLD SCRIPT", "SANS-SERIF BOLD", "MONOSPACE"):
        yield styled(word.upper(), style)
        yield styled(word.title(), style)
    for zw in ZERO_WIDTH:
        yield zw.join(word)
        yield word[0] + zw + word[1:]
    for mark in MARKS:
        yield "".join(c + mark for c in word)
        yield unicodedata.normalize("NFC", word[0] + mark + word[1:])
    for sep in (" ", ".", "-", "_", " . ", "  ", " - "):
        yield spaced(sep)(word)
    yield from leet_variants(word)
    for i in range(len(word)):
        yield word[:i] + word[i] * 3 + word[i + 1 :]
        yield word[:i] + word[i] * 7 + word[i + 1 :]
    yield "".join(c * 3 for c in word)
    # mixed: several evasions at once
    yield fullwidth(word[:1]) + "\u200b" + word[1:].upper()
    yield ".".join(fullwidth(c) for c in word)
    yield " ".join(c + "\u0301" for c in word)
    for variant in itertools.islice(leet_variants(word), 3):
        yield "\u200d".join(variant)
        yield spaced(" ")(variant)
        yield "".join(c * 4 for c in variant)


CORPUS = sorted({(word, evasion) for word in BLOCKED for evasion in evasions(word)})
CONTEXTS = ("{}", "a photo of a {} on a table", "{}!", "({})", "the {}, slowly")


@pytest.mark.parametrize(("word", "evasion"), CORPUS)
def test_every_evasion_of_a_blocked_word_is_refused(word: str, evasion: str) -> None:
    for context in CONTEXTS:
        prompt = context.format(evasion)
        rule = WORDS.match(prompt)
        assert rule is not None, f"{prompt!r} (folded {fold(prompt)!r}) passed"


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) > 200


NEAR_MISSES = {
    "ass": (
        "class classic assistant passage bass mass grass glass assume assert assess assign "
        "associate compass embassy harass lasso massive passenger assemble asset brass "
        "cassette hassle tassel molasses chassis bypass trespass amass sassy carcass"
    ),
    "cat": (
        "catalog category cattle scatter educate location vacation communicate catch delicate "
        "duplicate certificate indicate allocate cathedral caterpillar catapult catastrophe "
        "vocation advocate concatenate dedicate implicate deprecate"
    ),
    "kill": "skill skillet skillful skilled",
    "bad": "badge badger badminton",
}


@pytest.mark.parametrize(
    "innocent", sorted({w for words in NEAR_MISSES.values() for w in words.split()})
)
def test_near_misses_pass(innocent: str) -> None:
    for prompt in (innocent, innocent.upper(), f"a {innocent} in the rain", f"{innocent}!"):
        assert WORDS.match(prompt) is None, prompt


def test_there_are_many_near_misses() -> None:
    assert sum(len(words.split()) for words in NEAR_MISSES.values()) >= 30


@pytest.mark.parametrize(
    "prompt",
    [
        "a sscary night",  # "a" then a real word: no joining across a word gap
        "as the sun sets",  # a doubled letter is a different spelling: "as" is not "ass"
        "the letter c at the start",
        "room 455 at 5 o'clock",  # numbers stay numbers
        "I have 5 cats",  # a plural is another word
        "a b c d",
        "ca t",
        "wow!!! a cute kitten",
        "$100 for a basket",
    ],
)
def test_innocent_prompts_pass(prompt: str) -> None:
    assert WORDS.match(prompt) is None


@pytest.mark.parametrize(
    "prompt",
    ["i am a c a t", "a s s", "that is b a d", "the k.i.l.l. switch", "cat's toy", "bad-tempered"],
)
def test_letters_spelled_apart_inside_a_sentence_are_refused(prompt: str) -> None:
    assert WORDS.match(prompt) is not None


def test_a_phrase_matches_written_apart_or_together() -> None:
    phrases = blocklist("self harm", kind=BlocklistKind.PHRASE)
    for prompt in ("self harm", "SELF-HARM", "selfharm", "s e l f harm", "self   h4rm"):
        assert phrases.match(prompt) is not None, prompt
    assert phrases.match("harm yourself") is None


def test_unspaced_scripts_match_inside_text() -> None:
    chinese = blocklist("杀人")
    assert chinese.match("一个杀人的场景") is not None
    assert chinese.match("一个安静的湖") is None


def test_refusal_names_the_rule_not_the_word() -> None:
    labelled = Blocklist([compile_entry(entry("cat", label="no animals"))])
    with pytest.raises(ModerationBlocked) as caught:
        screen_prompt("a c@t on a mat", labelled)
    assert caught.value.rule == "moderation.blocklist"
    assert caught.value.params == {"rule": "no animals"}
    text = render(caught.value.rule, "en", **caught.value.params)
    assert "no animals" in text and "cat" not in text.replace("no animals", "")
    with pytest.raises(ModerationBlocked) as unlabelled:
        screen_prompt("CAT", WORDS)
    assert unlabelled.value.params == {"rule": DEFAULT_LABEL}


def test_camera_commands_are_not_screened() -> None:
    pan = blocklist("pan", "左摇")
    screen_prompt("[Pan left] a quiet lake at dawn", pan)
    screen_prompt("a quiet lake [Pan left,Zoom in] at dawn [左摇]", pan)
    with pytest.raises(ModerationBlocked):
        screen_prompt("a frying pan on the stove [Pan left]", pan)
    with pytest.raises(ModerationBlocked):  # brackets that do not parse: screened whole
        screen_prompt("[Pan left", pan)


# --- regex entries ---------------------------------------------------------------------


def test_regex_entries_run_on_the_folded_text() -> None:
    spam = blocklist(r"\bsp[a4]m+(er)?s?\b", kind=BlocklistKind.REGEX)
    for prompt in ("SPAM", "spammmmers", "ｓｐａｍ", "s p a m", "sp\u200bam", "spåm"):
        assert spam.match(prompt) is not None, prompt
    assert spam.match("a spa morning") is None


@pytest.mark.parametrize(
    ("pattern", "code", "feature"),
    [
        ("(unclosed", "moderation.pattern_invalid", None),
        ("[a-", "moderation.pattern_invalid", None),
        ("a" * 201, "moderation.entry_too_long", None),
        (r"(a)\1", "moderation.pattern_unsupported", "moderation.re2.backreference"),
        ("(?P<x>a)(?P=x)", "moderation.pattern_unsupported", "moderation.re2.backreference"),
        ("a(?=b)", "moderation.pattern_unsupported", "moderation.re2.lookaround"),
        ("(?<!a)b", "moderation.pattern_unsupported", "moderation.re2.lookaround"),
        ("(?x) a b", "moderation.pattern_unsupported", "moderation.re2.group"),
        ("a++", "moderation.pattern_unsupported", "moderation.re2.repeat"),
        ("a{1001}", "moderation.pattern_unsupported", "moderation.re2.size"),
        ("[a-z]{200}", "moderation.pattern_unsupported", "moderation.re2.size"),
        ("x*|y", "moderation.pattern_matches_everything", None),
        ("   ", "moderation.entry_empty", None),
    ],
)
def test_unsupported_or_broken_patterns_are_refused(
    pattern: str, code: str, feature: str | None
) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_entry(BlocklistKind.REGEX, pattern)
    assert caught.value.rule == code
    params = caught.value.params
    if feature is not None:
        assert getattr(params["feature"], "code", None) == feature
    assert placeholders(CATALOG[FALLBACK_LOCALE][code]) <= set(params)
    for locale in ("en", "zh-CN"):
        text = render(code, locale, **params)
        if feature is not None:
            assert render(feature, locale) in text


@pytest.mark.parametrize(
    "pattern",
    ["k+i+l+", "(cat)s?", "(ab)+", "[a-z]{3,}x", "(?i)foo|bar", "(a+)+$", "(a|aa)*b", "(x{2,})+"],
)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    assert validate_entry(BlocklistKind.REGEX, pattern) == pattern


@pytest.mark.parametrize("text", ["", "  ", "!!!", "...", "\u200b"])
def test_a_word_that_folds_to_nothing_is_refused(text: str) -> None:
    with pytest.raises(UserInputError, match=r"moderation\.entry_empty"):
        validate_entry(BlocklistKind.WORD, text)


def test_a_stored_entry_that_no_longer_compiles_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="hailuo.moderation.screening"):
        compiled = Blocklist.compile([entry("(broken", BlocklistKind.REGEX), entry("cat")])
    assert len(compiled.rules) == 1
    assert "pattern_invalid" in caplog.text and "(broken" not in caplog.text


# --- folding properties ----------------------------------------------------------------


@given(st.text())
def test_folding_is_idempotent_and_never_raises(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert folded == folded.strip() and "  " not in folded
    joined, runs = joined_runs(folded)
    assert all(run in joined.split(" ") for run in runs)
    WORDS.match(text)


@given(st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789.-_@$!")))
def test_case_and_fullwidth_forms_fold_alike(text: str) -> None:
    assert fold(text.upper()) == fold(text) == fold(fullwidth(text))


@given(st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz")))
def test_compatibility_letters_fold_like_plain_ones(text: str) -> None:
    assert fold(styled(text.upper())) == fold(styled(text, "BOLD SCRIPT")) == fold(text)


def test_letterlike_symbols_and_modifier_capitals_fold_to_plain_lower_case() -> None:
    # Black-letter H, Fraktur e l l o, modifier capitals H I: NFKC makes them plain letters.
    assert fold("\u210c\U0001d522\U0001d529\U0001d529\U0001d52c \u1d34\u1d35") == "hello hi"


# --- approval policy -------------------------------------------------------------------

NOW = 1_795_000_000.0
MOD, TRUSTED, OTHER = 10, 20, 30


@pytest.mark.parametrize(
    ("mode", "trusted", "roles", "joined_days_ago", "held"),
    [
        (ApprovalMode.OFF, (), (), 0, False),
        (ApprovalMode.OFF, (), (), None, False),
        (ApprovalMode.EVERYONE, (), (), 400, True),
        (ApprovalMode.EVERYONE, (), (MOD,), 0, False),  # moderators never wait
        (ApprovalMode.NEW_MEMBERS, (), (), 1, True),
        (ApprovalMode.NEW_MEMBERS, (), (), 6.99, True),
        (ApprovalMode.NEW_MEMBERS, (), (), 7, False),
        (ApprovalMode.NEW_MEMBERS, (), (), 30, False),
        (ApprovalMode.NEW_MEMBERS, (), (), None, True),  # join time unknown
        (ApprovalMode.NEW_MEMBERS, (TRUSTED,), (OTHER,), 30, True),  # lacks a trusted role
        (ApprovalMode.NEW_MEMBERS, (TRUSTED,), (TRUSTED,), 30, False),
        (ApprovalMode.NEW_MEMBERS, (TRUSTED,), (TRUSTED,), 1, True),  # still new
        (ApprovalMode.NEW_MEMBERS, (TRUSTED,), (MOD,), 1, False),
    ],
)
def test_approval_policy(
    mode: ApprovalMode,
    trusted: tuple[int, ...],
    roles: tuple[int, ...],
    joined_days_ago: float | None,
    held: bool,
) -> None:
    settings = ModerationSettings(
        1, approval_mode=mode, moderator_role_id=MOD, trusted_role_ids=frozenset(trusted)
    )
    joined_at = None if joined_days_ago is None else NOW - joined_days_ago * DAY
    assert needs_approval(settings, role_ids=roles, joined_at=joined_at, now=NOW) is held


def test_new_member_days_is_configurable() -> None:
    settings = ModerationSettings(1, approval_mode=ApprovalMode.NEW_MEMBERS, new_member_days=30)
    assert needs_approval(settings, role_ids=(), joined_at=NOW - 10 * DAY, now=NOW)
    assert not needs_approval(settings, role_ids=(), joined_at=NOW - 31 * DAY, now=NOW)


# --- gating ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "roles", "channel", "parent", "member_roles", "refused"),
    [
        ((), (), 5, None, (), None),  # defaults: everywhere, everyone
        ((5, 6), (), 5, None, (), None),
        ((5, 6), (), 7, None, (), "moderation.channel_not_allowed"),
        ((5, 6), (), 99, 6, (), None),  # a thread of an allowed channel
        ((), (20,), 5, None, (20, 30), None),
        ((), (20,), 5, None, (30,), "moderation.role_required"),
        ((), (20,), 5, None, (MOD,), None),  # the moderator role always may
        ((5,), (20,), 7, None, (30,), "moderation.channel_not_allowed"),  # channel first
    ],
)
def test_gating(
    channels: tuple[int, ...],
    roles: tuple[int, ...],
    channel: int,
    parent: int | None,
    member_roles: tuple[int, ...],
    refused: str | None,
) -> None:
    settings = ModerationSettings(
        1,
        allowed_channel_ids=frozenset(channels),
        allowed_role_ids=frozenset(roles),
        moderator_role_id=MOD,
    )
    if refused is None:
        check_gate(settings, channel_id=channel, role_ids=member_roles, parent_channel_id=parent)
        return
    with pytest.raises((UserInputError, ModerationBlocked)) as caught:
        check_gate(settings, channel_id=channel, role_ids=member_roles, parent_channel_id=parent)
    assert caught.value.rule == refused
    text = render(caught.value.rule, "en", **caught.value.params)
    assert "?" not in text


def test_gating_errors_carry_the_ids_and_their_kinds() -> None:
    settings = ModerationSettings(1, allowed_channel_ids=frozenset({6, 5}))
    with pytest.raises(UserInputError) as caught:
        check_gate(settings, channel_id=7, role_ids=())
    assert caught.value.params["channel_ids"] == (5, 6)
    assert render(caught.value.rule, "en", **caught.value.params) == (
        "Videos can be made only in <#5>, <#6> here."
    )
    with pytest.raises(ModerationBlocked) as role:
        check_gate(
            ModerationSettings(1, allowed_role_ids=frozenset({20})), channel_id=1, role_ids=()
        )
    assert role.value.params["role_ids"] == (20,)


def test_blocked_members_are_told_until_when() -> None:
    forever = Block(1, 1, 2, None, "", NOW, None, None, None)
    assert blocked_error(forever).rule == "moderation.blocked"
    timed = blocked_error(Block(1, 1, 2, 3, "", NOW, NOW + DAY, None, None))
    assert timed.rule == "moderation.blocked_until" and timed.params["until"] == int(NOW + DAY)
    assert "<t:" in render(timed.rule, "en", **timed.params)


# --- strikes ---------------------------------------------------------------------------


async def new_job(db: Database, user_id: int = 3) -> int:
    async with db.transaction() as tx:
        return await JobRepository(db).create(
            tx,
            NewJob(
                guild_id=1,
                channel_id=2,
                user_id=user_id,
                spec=JobSpec(mode=Mode.TEXT, prompt="x"),
                cost=1,
                period="2026-11-26",
                status=JobStatus.QUEUED,
            ),
            now=0.0,
        )


def test_only_provider_moderation_counts_as_a_strike() -> None:
    assert counts_as_strike("provider.moderation")
    assert not counts_as_strike("provider.invalid_request")
    assert not counts_as_strike(None)


async def test_strikes_block_at_the_threshold_within_the_window(
    db: Database, clock: FakeClock
) -> None:
    async def strike() -> bool:
        outcome = await record_strike(db, clock, guild_id=1, user_id=3, job_id=await new_job(db))
        return outcome.blocked

    assert not await strike()  # day 0
    clock.advance(2 * DAY)
    assert not await strike()  # day 2
    clock.advance(6 * DAY)
    assert not await strike()  # day 8: day 0 left the 7-day window
    clock.advance(DAY / 2)
    outcome = await record_strike(db, clock, guild_id=1, user_id=3, job_id=await new_job(db))
    assert outcome.blocked and outcome.newly_blocked and outcome.strikes == 3
    assert outcome.block is not None and outcome.block.blocked_by is None
    blocks = BlockRepository(db)
    assert await blocks.is_blocked(1, 3, clock())
    assert not await blocks.is_blocked(1, 4, clock())  # another member
    assert not await blocks.is_blocked(2, 3, clock())  # another server

    clock.advance(60)
    again = await record_strike(db, clock, guild_id=1, user_id=3, job_id=await new_job(db))
    assert again.blocked and not again.newly_blocked

    await blocks.unblock(1, 3, by=MOD, now=clock())
    clock.advance(60)
    after = await record_strike(db, clock, guild_id=1, user_id=3, job_id=await new_job(db))
    assert not after.blocked and after.strikes == 1  # the block spent the earlier strikes


async def test_a_job_counts_once_and_thresholds_are_per_server(
    db: Database, clock: FakeClock
) -> None:
    await ModerationSettingsRepository(db).update(
        1, {"strike_threshold": 2, "strike_window_seconds": DAY}, actor_id=MOD, now=clock()
    )
    job = await new_job(db)
    first = await record_strike(db, clock, guild_id=1, user_id=3, job_id=job)
    repeat = await record_strike(db, clock, guild_id=1, user_id=3, job_id=job)
    assert first.counted and not repeat.counted and repeat.strikes == 1
    clock.advance(DAY + 1)
    assert not (await record_strike(db, clock, guild_id=1, user_id=3, job_id=None)).blocked
    clock.advance(60)
    outcome = await record_strike(db, clock, guild_id=1, user_id=3, job_id=None)
    assert outcome.blocked and outcome.threshold == 2
