"""Prompt screening, the approval policy, channel/role gating and strikes; free of Discord.

Screening runs before anything is reserved. A prompt and every blocklist
entry are *folded* the same way (:func:`fold`), so the usual evasions meet the
entry they hide: case, diacritics, compatibility forms (fullwidth letters),
invisible characters, letters stretched to three or more, and digit/symbol
swaps inside a word. Words and phrases match whole words of the folded text,
so blocking "ass" leaves "class" and "passage" alone. Letters spelled apart
("b a d", "b.a.d") are caught by a second view in which runs of single-letter
tokens are joined while real words keep their boundaries ("a sscary" stays
two words). Camera commands are not screened.

A refusal names the entry's label (or the catalog's default label, in the
reader's language), never the entry.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from hailuo.camera import parse_prompt
from hailuo.clock import Clock
from hailuo.errors import ModerationBlocked, UserInputError
from hailuo.messages import Term
from storage.blocklist import BlocklistEntry, BlocklistKind
from storage.db import Database
from storage.moderation import (
    DAY,
    ApprovalMode,
    Block,
    BlockRepository,
    ModerationSettings,
    ModerationSettingsRepository,
    StrikeRepository,
)

log = logging.getLogger(__name__)

#: The label of an entry an admin left unlabelled ("server word list"): rendered in the
#: reader's language when shown; stored labels are the admin's text, shown as typed.
DEFAULT_LABEL = Term("moderation.default_label")
MAX_ENTRY_CHARS = 200  # an entry, a regex pattern included (the schema's CHECK too)
MAX_SCREENED_CHARS = 4000  # of the folded text a regex runs on (prompts stop at 2000)
STRIKE_RULE = "provider.moderation"

# Invisible characters removed before anything else; every other format
# character (category Cf: bidi controls, word joiners) goes too.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u034f")
_DROPPED_MARKS = frozenset({"Mn", "Me"})
# Latin letters with a stroke or bar have no NFKD decomposition.
_LETTER_FIXES = str.maketrans(
    {"ø": "o", "đ": "d", "ħ": "h", "ł": "l", "ı": "i", "ŧ": "t", "æ": "ae", "œ": "oe"}
)
# Digit/symbol swaps inside a word. "1" stays "1": it stands for i or l, and
# the entry patterns accept it for either.
_LEET = str.maketrans(
    {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"} | {"@": "a", "$": "s", "!": "i"}
)
_LEET_SYMBOLS = frozenset("@$!")
_STRETCHED = re.compile(r"(.)\1{3,}")
_AMBIGUOUS = {"i": "[i1]", "l": "[l1]", "1": "[il1]"}
_STRETCH = 6  # characters one letter of an entry may stretch to
# Scripts written without spaces between words: their entries match anywhere.
_UNSPACED_SCRIPTS = (
    "CJK", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "MYANMAR",
    "TIBETAN",
)  # fmt: skip


def fold(text: str) -> str:
    """The canonical form prompts and entries are compared in; idempotent.

    Lower-case, unaccented, NFKC-compatible tokens of letters and digits,
    separated by single spaces; symbol swaps undone inside words; runs of
    four or more of one character cut to three (three marks "stretched").
    """
    text = "".join(ch for ch in text if ch not in _INVISIBLE and unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(
        ch
        for ch in unicodedata.normalize("NFKD", text)
        if unicodedata.category(ch) not in _DROPPED_MARKS
    )
    text = text.translate(_LETTER_FIXES)
    tokens: list[str] = []
    current: list[str] = []
    for ch in text + " ":
        if _is_word_char(ch) or ch in _LEET_SYMBOLS:
            current.append(ch)
        elif current:
            tokens.append(_fold_token("".join(current)))
            current = []
    return " ".join(t for t in tokens if t)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch) == "Mc"


def _fold_token(raw: str) -> str:
    core = raw.strip("!")  # "wow!" ends a sentence; "sh!t" hides an i
    # Swaps apply inside words and to pure-symbol tokens ("@$$"), never to numbers ("$100").
    if any(ch.isalpha() for ch in core) or not any(ch.isdigit() for ch in core):
        core = core.translate(_LEET)
    core = "".join(ch for ch in core if _is_word_char(ch))
    return _STRETCHED.sub(r"\1\1\1", core)


def joined_runs(folded: str) -> tuple[str, tuple[str, ...]]:
    """``folded`` with each run of two or more single-character tokens joined, and those runs.

    "b a d day" -> ("bad day", ("bad",)); a run holding a letter also has its
    digits swapped ("b 4 d" -> "bad"), which a lone number never has.
    """
    words: list[str] = []
    runs: list[str] = []
    for single, group in itertools.groupby(folded.split(" "), key=lambda t: len(t) == 1):
        tokens = list(group)
        if single and len(tokens) >= 2:
            run = "".join(tokens)
            if any(ch.isalpha() for ch in run):
                run = run.translate(_LEET)
            words.append(run)
            runs.append(run)
        else:
            words.extend(tokens)
    return " ".join(words), tuple(runs)


@dataclass(frozen=True)
class BlocklistRule:
    """One compiled entry: ``label`` is what the member is told."""

    entry_id: int
    label: str
    kind: BlocklistKind
    bounded: re.Pattern[str]  # on the folded text and the joined view
    inner: re.Pattern[str] | None  # inside a run of joined single letters; None for a regex


class Blocklist:
    """A server's compiled blocklist; ``match`` finds the first rule a text breaks."""

    def __init__(self, rules: Iterable[BlocklistRule] = ()) -> None:
        self.rules = tuple(rules)

    @classmethod
    def compile(cls, entries: Iterable[BlocklistEntry]) -> Blocklist:
        """Compile stored entries; one that no longer passes validation is skipped and logged."""
        rules = []
        for entry in entries:
            try:
                rules.append(compile_entry(entry))
            except UserInputError as exc:
                log.warning(
                    "blocklist entry %d of guild %d skipped: %s", entry.id, entry.guild_id, exc.rule
                )
        return cls(rules)

    def match(self, text: str) -> BlocklistRule | None:
        folded = fold(text)
        joined, runs = joined_runs(folded)
        views = (folded, joined) if joined != folded else (folded,)
        for rule in self.rules:
            if rule.kind is BlocklistKind.REGEX:
                if any(rule.bounded.search(view[:MAX_SCREENED_CHARS]) for view in views):
                    return rule
            elif any(rule.bounded.search(view) for view in views) or (
                rule.inner is not None and any(rule.inner.search(run) for run in runs)
            ):
                return rule
        return None


def screen_prompt(prompt: str, blocklist: Blocklist) -> None:
    """Raise ``ModerationBlocked("moderation.blocklist", rule=label)`` if the prompt breaks a rule.

    Only the text outside camera commands is screened; a prompt whose
    brackets do not parse is screened whole.
    """
    try:
        text = parse_prompt(prompt).camera_free_text()
    except UserInputError:
        text = prompt
    rule = blocklist.match(text)
    if rule is not None:
        raise ModerationBlocked("moderation.blocklist", rule=rule.label)


def validate_entry(kind: BlocklistKind, text: str) -> str:
    """The entry as it should be stored (stripped), or ``UserInputError`` naming the problem."""
    text = text.strip()
    if len(text) > MAX_ENTRY_CHARS:
        raise UserInputError("moderation.entry_too_long", maximum=MAX_ENTRY_CHARS, actual=len(text))
    if kind is BlocklistKind.REGEX:
        if not text:
            raise UserInputError("moderation.entry_empty")
        try:
            re.compile(text)
        except re.error as exc:
            raise UserInputError("moderation.pattern_invalid", error=exc.msg) from None
        if _unsafe_pattern(text):
            raise UserInputError("moderation.pattern_unsafe")
    elif not fold(text):
        raise UserInputError("moderation.entry_empty")
    return text


def compile_entry(entry: BlocklistEntry) -> BlocklistRule:
    text = validate_entry(entry.kind, entry.text)
    label = entry.label.strip() or DEFAULT_LABEL
    if entry.kind is BlocklistKind.REGEX:
        pattern = re.compile(text, re.IGNORECASE)
        return BlocklistRule(entry.id, label, entry.kind, pattern, None)
    body = _term_body(fold(text))
    bounded = body if _unspaced(text) else rf"(?<![^ ]){body}(?![^ ])"
    return BlocklistRule(entry.id, label, entry.kind, re.compile(bounded), re.compile(body))


def _term_body(folded: str) -> str:
    """A folded word or phrase as a pattern; the words of a phrase may be written together.

    A single letter matches once or stretched (three or more: "baaad"), never
    doubled, so "god" spares "good" and "as" spares "ass"; a doubled letter
    matches two or more. Repeats are bounded (``_STRETCH`` per letter), since
    "1" mixed with "i" or "l" escapes the fold's cap of three.
    """
    words = []
    for word in folded.split(" "):
        parts = []
        for ch, group in itertools.groupby(word):
            n = len(list(group))
            cls = _AMBIGUOUS.get(ch, re.escape(ch))
            most = _STRETCH * n
            parts.append(f"(?:{cls}{{3,{most}}}|{cls})" if n == 1 else f"{cls}{{{n},{most}}}")
        words.append("".join(parts))
    return " ?".join(words)


def _unspaced(text: str) -> bool:
    return any(unicodedata.name(ch, "").startswith(_UNSPACED_SCRIPTS) for ch in text)


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_BRACES = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _unsafe_pattern(pattern: str) -> bool:
    """A cheap guard against catastrophic backtracking: refuse backreferences and any
    repeated group that holds a quantifier or an alternation, like ``(a+)+`` or ``(a|aa)*``."""
    if _BACKREFERENCE.search(pattern):
        return True
    risky = [False]  # per open group: holds a quantifier or "|"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(pattern, i)
            continue
        if ch == "(":
            risky.append(False)
            i += 2 if pattern[i + 1 : i + 2] == "?" else 1
            continue
        if ch == ")":
            inner = risky.pop() if len(risky) > 1 else False
            repeat = _quantifier(pattern, i + 1)
            if inner and repeat > 1:
                return True
            risky[-1] = risky[-1] or inner or repeat > 0
        elif ch == "|" or _quantifier(pattern, i):
            risky[-1] = True
        i += 1
    return False


def _quantifier(pattern: str, i: int) -> int:
    """0: no quantifier at ``i``; 1: one that repeats at most once; 2: one that repeats."""
    ch = pattern[i : i + 1]
    if ch in ("*", "+"):
        return 2
    if ch == "?":
        return 1
    braces = _BRACES.match(pattern, i) if ch == "{" else None
    if braces is None or not (braces.group(1) or braces.group(3)):
        return 0
    low, comma, high = braces.groups()
    most = (int(high) if high else 2) if comma else int(low)
    return 2 if most > 1 else 1


def _class_end(pattern: str, i: int) -> int:
    """The index just past the character class opening at ``i``."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def needs_approval(
    settings: ModerationSettings, *, role_ids: Collection[int], joined_at: float | None, now: float
) -> bool:
    """Whether a member's job waits for a moderator.

    Holders of the moderator role never wait. In ``new_members`` mode a
    member waits who joined less than ``new_member_days`` ago (or whose join
    time is unknown), or who lacks every trusted role when some are set.
    """
    if settings.approval_mode is ApprovalMode.OFF:
        return False
    if settings.moderator_role_id is not None and settings.moderator_role_id in role_ids:
        return False
    if settings.approval_mode is ApprovalMode.EVERYONE:
        return True
    if joined_at is None or now - joined_at < settings.new_member_days * DAY:
        return True
    return bool(settings.trusted_role_ids) and settings.trusted_role_ids.isdisjoint(role_ids)


def check_gate(
    settings: ModerationSettings,
    *,
    channel_id: int,
    role_ids: Collection[int],
    parent_channel_id: int | None = None,
) -> None:
    """Refuse a request from a channel or a member the server does not allow.

    A thread counts as its parent channel. Raises ``UserInputError``
    ``moderation.channel_not_allowed`` or ``ModerationBlocked``
    ``moderation.role_required``; the moderator role always may generate.
    """
    allowed = settings.allowed_channel_ids
    if allowed and channel_id not in allowed and parent_channel_id not in allowed:
        ids = tuple(sorted(allowed))
        raise UserInputError(
            "moderation.channel_not_allowed",
            channel_ids=ids,
            channels=tuple(f"<#{i}>" for i in ids),
        )
    roles = settings.allowed_role_ids
    if settings.moderator_role_id is not None:
        roles = roles and roles | {settings.moderator_role_id}
    if roles and roles.isdisjoint(role_ids):
        ids = tuple(sorted(settings.allowed_role_ids))
        raise ModerationBlocked(
            "moderation.role_required", role_ids=ids, roles=tuple(f"<@&{i}>" for i in ids)
        )


def blocked_error(block: Block) -> ModerationBlocked:
    """What a blocked member is told."""
    if block.until is None:
        return ModerationBlocked("moderation.blocked")
    return ModerationBlocked("moderation.blocked_until", until=int(block.until))


def counts_as_strike(failure_rule: str | None) -> bool:
    """A provider's content refusal counts against the member."""
    return failure_rule == STRIKE_RULE


def reaches_block(settings: ModerationSettings, strikes: int) -> bool:
    return strikes >= settings.strike_threshold


@dataclass(frozen=True)
class StrikeOutcome:
    counted: bool  # False: this job had already been counted
    strikes: int  # in the window, since the member's last block ended
    threshold: int
    blocked: bool  # the member is blocked now
    newly_blocked: bool  # by this strike
    block: Block | None


async def record_strike(
    db: Database, clock: Clock, *, guild_id: int, user_id: int, job_id: int | None
) -> StrikeOutcome:
    """Count a provider moderation refusal; block the member at the server's threshold.

    Strikes count within ``strike_window_seconds`` of now and only after the
    member's latest block ended (a block spends the strikes before and during it).
    One transaction: the strike, the block and their audit rows.
    """
    now = clock()
    strikes, blocks = StrikeRepository(db), BlockRepository(db)
    async with db.transaction() as tx:
        settings = await ModerationSettingsRepository(db).get(guild_id, tx)
        counted = await strikes.add(
            guild_id, user_id, job_id=job_id, rule=STRIKE_RULE, now=now, tx=tx
        )
        since = now - settings.strike_window_seconds
        reset = await blocks.strikes_reset_at(guild_id, user_id, now, tx)
        count = await strikes.count_since(guild_id, user_id, max(since, reset or since), tx)
        block = await blocks.active(guild_id, user_id, now, tx)
        newly = block is None and counted and reaches_block(settings, count)
        if newly:
            days = settings.strike_window_seconds / DAY
            block = await blocks.block(
                guild_id,
                user_id,
                by=None,
                reason=f"{count} provider moderation refusals within {days:g} days",
                now=now,
                tx=tx,
            )
    return StrikeOutcome(counted, count, settings.strike_threshold, block is not None, newly, block)
