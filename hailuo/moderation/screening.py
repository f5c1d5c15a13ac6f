"""Prompt screening, the approval policy, channel/role gating and strikes; free of Discord.

Screening runs before anything is reserved, and never inside a write
transaction (``hailuo.moderation.gating``). A prompt and every blocklist entry are
folded the same way (``hailuo.moderation.folding``: case, diacritics, compatibility
forms, invisible characters, stretched letters, digit/symbol swaps and
look-alike letters of other scripts). Words and phrases match whole words of
the folded text, so blocking "ass" leaves "class" and "passage" alone.
Letters spelled apart ("b a d", "b.a.d") are caught by a view in which runs
of single-letter tokens are joined while real words keep their boundaries
("a sscary" stays two words); an entry of four letters or more is also
caught with one lone letter split off ("kil l"). Camera commands are not
screened.

Every pattern, ours and the admins' regex entries alike, runs on RE2, a
linear-time engine: no pattern can backtrack, so one server's entry cannot
stall the bot for every server. What RE2 cannot compile (backreferences,
lookaround, ``(?x)``) is refused when it is added, with the rule it breaks;
a server holds at most ``MAX_ENTRIES`` entries, ``MAX_PATTERNS`` of them
regular expressions, each at most ``MAX_ENTRY_CHARS`` long.

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

import re2

from hailuo.clock import Clock
from hailuo.i18n.messages import Term
from hailuo.model.camera import parse_prompt
from hailuo.model.errors import ModerationBlocked, UserInputError
from hailuo.model.moderation import DAY, ApprovalMode, Block, ModerationSettings
from hailuo.moderation.folding import UNSPACED_SCRIPTS, ScreenViews, fold, screen_views
from hailuo.moderation.folding import (
    joined_runs as joined_runs,  # re-exported: the screening tests use it
)
from storage.blocklist import BlocklistEntry, BlocklistKind
from storage.port import Storage

log = logging.getLogger(__name__)

#: The label of an entry an admin left unlabelled ("server word list"): rendered in the
#: reader's language when shown; stored labels are the admin's text, shown as typed.
DEFAULT_LABEL = Term("moderation.default_label")
MAX_ENTRY_CHARS = 200  # an entry, a regex pattern included (the schema's CHECK too)
MAX_ENTRIES = 200  # per server, of every kind: the work one prompt's screening may take
MAX_PATTERNS = 25  # per server, regular expressions among MAX_ENTRIES
STRIKE_RULE = "provider.moderation"

_AMBIGUOUS = {"i": "[i1]", "l": "[l1]", "1": "[il1]"}
_STRETCH = 6  # characters one letter of an entry may stretch to
_STRAY_MIN = 4  # letters an entry needs to be matched with one letter split off ("kil l")
_RE2_MAX_MEM = 2 << 20  # bytes one compiled pattern may use (its program and its DFA cache)
#: RE2 instructions one regex entry may compile to: ``[a-z]{1000}`` is 6,000 and costs
#: 80 ms on a 6,000-byte text once RE2 falls back from its DFA; a typical entry is 10-50.
MAX_PATTERN_PROGRAM = 1000


def _options(*, case_sensitive: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False  # RE2 would print the admin's pattern to stderr
    options.max_mem = _RE2_MAX_MEM
    return options


def _compile(pattern: str, *, case_sensitive: bool = True) -> re2._Regexp:
    return re2.compile(pattern, _options(case_sensitive=case_sensitive))


@dataclass(frozen=True)
class BlocklistRule:
    """One compiled entry: ``label`` is what the member is told."""

    entry_id: int
    label: str
    kind: BlocklistKind
    bounded: re2._Regexp  # on the folded and joined views (a regex on their first 4000 chars)
    inner: re2._Regexp | None  # inside a run of joined single letters; None for a regex
    strays: bool = False  # also on the views with one lone letter joined to a neighbour


class Blocklist:
    """A server's compiled blocklist; ``match`` finds the first rule a text breaks."""

    def __init__(self, rules: Iterable[BlocklistRule] = ()) -> None:
        self.rules = tuple(rules)

    @classmethod
    def compile(cls, entries: Iterable[BlocklistEntry]) -> Blocklist:
        """Compile stored entries; one that no longer passes validation, or past the
        server's caps, is skipped and logged."""
        rules: list[BlocklistRule] = []
        for entry in entries:
            try:
                check_room(entry.kind, rules)
                rules.append(compile_entry(entry))
            except UserInputError as exc:
                log.warning(
                    "blocklist entry %d of guild %d skipped: %s", entry.id, entry.guild_id, exc.rule
                )
        return cls(rules)

    def match(self, text: str | ScreenViews) -> BlocklistRule | None:
        """The first rule ``text`` breaks; linear in the text for every rule.

        ``text`` may be views computed once by ``screen_views`` and matched
        against several versions of a blocklist.
        """
        views = screen_views(text) if isinstance(text, str) else text
        for rule in self.rules:
            if rule.kind is BlocklistKind.REGEX:
                if any(rule.bounded.search(view) for view in views.cut):
                    return rule
            elif (
                any(rule.bounded.search(view) for view in views.words)
                or (rule.inner is not None and any(rule.inner.search(r) for r in views.runs))
                or (rule.strays and any(rule.bounded.search(view) for view in views.strays))
            ):
                return rule
        return None


def screened_text(prompt: str) -> str:
    """The part of a prompt that is screened: the text outside camera commands.

    A prompt whose brackets do not parse is screened whole.
    """
    try:
        return parse_prompt(prompt).camera_free_text()
    except UserInputError:
        return prompt


def screen_prompt(prompt: str, blocklist: Blocklist) -> None:
    """Raise ``ModerationBlocked("moderation.blocklist", rule=label)`` if the prompt breaks a rule.

    Only the text outside camera commands is screened (``screened_text``).
    """
    rule = blocklist.match(screened_text(prompt))
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
            compiled = _compile(text, case_sensitive=False)
        except re2.error as exc:
            raise _pattern_refusal(exc) from None
        if compiled.programsize > MAX_PATTERN_PROGRAM:
            # Linear, but in the text times the program: a huge one would still be slow.
            raise UserInputError(
                "moderation.pattern_unsupported", feature=Term("moderation.re2.size")
            )
        if compiled.search("") is not None:
            raise UserInputError("moderation.pattern_matches_everything")
    elif not fold(text):
        raise UserInputError("moderation.entry_empty")
    return text


def check_room(kind: BlocklistKind, entries: Collection[BlocklistEntry | BlocklistRule]) -> None:
    """Refuse one more entry past the server's caps (``MAX_ENTRIES``, ``MAX_PATTERNS``)."""
    if len(entries) >= MAX_ENTRIES:
        raise UserInputError("moderation.too_many_entries", maximum=MAX_ENTRIES)
    patterns = sum(e.kind is BlocklistKind.REGEX for e in entries)
    if kind is BlocklistKind.REGEX and patterns >= MAX_PATTERNS:
        raise UserInputError("moderation.too_many_patterns", maximum=MAX_PATTERNS)


# RE2's compile errors, as the rule the admin's pattern breaks ("(?P=name)" fails as "(?P").
_UNSUPPORTED = (
    ("moderation.re2.backreference", r"invalid escape sequence: \\[1-9]|operator: \(\?P"),
    ("moderation.re2.lookaround", r"invalid perl operator: \(\?<?[=!]"),
    ("moderation.re2.group", r"invalid perl operator: \(\?"),
    ("moderation.re2.repeat", r"bad repetition operator"),
    ("moderation.re2.size", r"invalid repetition size|pattern too large"),
)


def _pattern_refusal(exc: re2.error) -> UserInputError:
    """The catalog's words for a pattern RE2 refused: the feature, or the engine's own words."""
    raw = exc.args[0] if exc.args else b""
    message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for feature, error in _UNSUPPORTED:
        if re.search(error, message):
            return UserInputError("moderation.pattern_unsupported", feature=Term(feature))
    # RE2 quotes the pattern after the colon: the admin has it, the rule is before it.
    return UserInputError("moderation.pattern_invalid", error=message.split(":")[0])


def compile_entry(entry: BlocklistEntry) -> BlocklistRule:
    text = validate_entry(entry.kind, entry.text)
    label = entry.label.strip() or DEFAULT_LABEL
    if entry.kind is BlocklistKind.REGEX:
        pattern = _compile(text, case_sensitive=False)
        return BlocklistRule(entry.id, label, entry.kind, pattern, None)
    # The entry as typed, and read with every look-alike as Latin ("сука" also as "cyka").
    forms = dict.fromkeys((fold(text), fold(text, confusables=True)))
    body = "|".join(_term_body(form) for form in forms)
    bounded = f"(?:{body})" if _unspaced(text) else f"(?:^| )(?:{body})(?: |$)"
    strays = min(len(form.replace(" ", "")) for form in forms) >= _STRAY_MIN
    return BlocklistRule(
        entry.id, label, entry.kind, _compile(bounded), _compile(f"(?:{body})"), strays
    )


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
    return any(unicodedata.name(ch, "").startswith(UNSPACED_SCRIPTS) for ch in text)


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
    window_seconds: int = 0  # strikes count within this long


async def record_strike(
    db: Storage, clock: Clock, *, guild_id: int, user_id: int, job_id: int | None
) -> StrikeOutcome:
    """Count a provider moderation refusal; block the member at the server's threshold.

    Strikes count within ``strike_window_seconds`` of now and only after the
    member's latest block ended (a block spends the strikes before and during it).
    One transaction: the strike, the block and their audit rows.
    """
    now = clock()
    strikes, blocks = db.strikes, db.blocks
    async with db.transaction() as tx:
        settings = await db.moderation.get(guild_id, tx)
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
    return StrikeOutcome(
        counted,
        count,
        settings.strike_threshold,
        block is not None,
        newly,
        block,
        settings.strike_window_seconds,
    )
