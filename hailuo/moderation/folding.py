"""The canonical form a prompt and a blocklist entry are compared in, and a prompt's views.

A prompt and every entry are *folded* the same way (:func:`fold`), so the
usual evasions meet the entry they hide: case, diacritics, compatibility forms
(fullwidth letters), invisible characters, letters stretched to three or more,
digit/symbol swaps inside a word, and look-alike letters of other scripts.

Look-alikes follow Unicode's TR39 confusables (``confusables.txt``, as the
``confusable-homoglyphs`` package ships it): a letter that looks like a Latin
letter is read as that letter ("kіll" with a Cyrillic і is "kill"). Only the
screened copy is folded; the prompt sent to the provider is never touched.
Words of another script are read as Latin only where a reader would take them
for Latin: beside Latin letters in the same word, or, when every letter of the
word has a Latin look-alike, in a text that holds Latin words. So a Russian
prompt stays Russian, and Chinese, Japanese and Korean are never mapped. A
capital I written among small letters ("kiII") or a small l among capitals
("KlLL") stands for either letter, like the digit 1, because case is folded.

:func:`screen_views` computes, once per prompt, every view the rules run on:
the folded text, the text with letters spelled apart joined ("b a d"), the
text with one stray letter joined to its neighbour ("kil l"), and the same
without other-script look-alikes, so an entry in another script still meets
its own words in a mixed-language prompt.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# Invisible characters removed before anything else; every other format
# character (category Cf: bidi controls, word joiners) goes too.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u034f")
_DROPPED_MARKS = frozenset({"Mn", "Me"})
# Latin letters with a stroke or bar have no NFKD decomposition.
_LETTER_FIXES = {"ø": "o", "đ": "d", "ħ": "h", "ł": "l", "ı": "i", "ŧ": "t", "æ": "ae", "œ": "oe"}
# Digit/symbol swaps inside a word. "1" stays "1": it stands for i or l, and
# the entry patterns accept it for either.
_LEET = str.maketrans(
    {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"} | {"@": "a", "$": "s", "!": "i"}
)
_LEET_SYMBOLS = frozenset("@$!")
_NO_SYMBOLS = str.maketrans("", "", "@$!")
_STRETCHED = re.compile(r"(.)\1{3,}")
# A capital I after a small letter, a small l between capitals: either letter (see the docstring).
_CAPITAL_I = re.compile(r"(?<=[^\W\d_])I+")
_SMALL_L = re.compile(r"(?<=[^\W\d_])l+(?=[^\W\d_])")
# Scripts written without spaces between words: their entries match anywhere.
UNSPACED_SCRIPTS = (
    "CJK", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "MYANMAR",
    "TIBETAN",
)  # fmt: skip
_PROTOTYPE = re.compile(r"[a-z]+")
_APOSTROPHE = re.compile(r"(?<=\w)['\u2019\u02bc`\u00b4](?=\w)")
#: Screened views of a regex entry stop here (prompts stop at 2000 characters).
MAX_SCREENED_CHARS = 4000


def fold(text: str, *, confusables: bool | None = None) -> str:
    """The canonical form prompts and entries are compared in; idempotent.

    Lower-case, unaccented, NFKC-compatible tokens of letters and digits,
    separated by single spaces; symbol swaps undone inside words; look-alike
    letters read as Latin; runs of four or more of one character cut to three
    (three marks "stretched"). ``confusables`` None reads other scripts as the
    module docstring says; True reads every look-alike as Latin (an entry's
    skeleton); False reads none of another script.
    """
    return _fold(text, confusables)[0]


def _fold(text: str, confusables: bool | None) -> tuple[str, str]:
    """``fold(text, confusables=...)`` and ``fold(text, confusables=False)``, in one pass.

    Every step over the characters is a C-level ``translate`` or normalization
    (the tables fill themselves, see ``_CharTable``), so folding stays a few
    milliseconds even for a prompt whose compatibility forms expand it tenfold.
    """
    text = _ambiguous_case(unicodedata.normalize("NFKC", text.translate(_VISIBLE))).casefold()
    text = unicodedata.normalize("NFKD", text).translate(_WORDS)
    tokens = [t for t in map(_fold_token, text.split()) if t]
    plain = " ".join(tokens)
    if confusables is False:
        return plain, plain
    other = _tables()[1]
    # A word beside Latin letters, or (in a text with Latin words) made only of look-alikes.
    latin_text = confusables or any(_has_latin(t) for t in tokens)
    looks = [_fold_token(t.translate(other)) if _looks_latin(t, latin_text) else t for t in tokens]
    return " ".join(t for t in looks if t), plain


class _CharTable(dict[int, "str | None"]):
    """A ``str.translate`` table that computes a character's entry the first time it is seen.

    It keeps at most ``_TABLE_SIZE`` characters, so prompts of every code
    point cannot grow it without bound (the rest are computed each time).
    """

    def __init__(self, entry: Callable[[str], str | None]) -> None:
        super().__init__()
        self._entry = entry

    def __missing__(self, code: int) -> str | None:
        value = self._entry(chr(code))
        if len(self) < _TABLE_SIZE:
            self[code] = value
        return value


def _visible(ch: str) -> str | None:
    """Invisible characters go before anything else; every other format character
    (category Cf: bidi controls, word joiners) goes too. A character whose compatibility
    form is longer than ``_MAX_EXPANSION`` (Arabic ligatures of a whole phrase, up to 18
    letters) separates words instead, so a prompt cannot fold to many times its length."""
    if ch in _INVISIBLE or unicodedata.category(ch) == "Cf":
        return None
    return " " if len(unicodedata.normalize("NFKC", ch)) > _MAX_EXPANSION else ch


def _word(ch: str) -> str | None:
    """After NFKD: marks go, Latin look-alikes become their letter, and what is neither a
    word character nor a swapped symbol separates words."""
    if unicodedata.category(ch) in _DROPPED_MARKS:
        return None
    latin = _tables()[0].get(ord(ch))
    if latin is not None:
        return latin
    return ch if _is_word_char(ch) or ch in _LEET_SYMBOLS else " "


_TABLE_SIZE = 65536
_MAX_EXPANSION = 4  # "ⅷ" is "viii"; "ﬃ" "ffi"
_VISIBLE = _CharTable(_visible)
_WORDS = _CharTable(_word)


def _ambiguous_case(text: str) -> str:
    """Mark a capital I among small letters and a small l among capitals as "1" (i or l)."""

    def capital_i(match: re.Match[str]) -> str:
        return "1" * len(match[0]) if text[match.start() - 1].islower() else match[0]

    def small_l(match: re.Match[str]) -> str:
        around = text[match.start() - 1] + text[match.end()]
        return "1" * len(match[0]) if around.isupper() else match[0]

    if "I" in text:
        text = _CAPITAL_I.sub(capital_i, text)
    if "l" in text:
        text = _SMALL_L.sub(small_l, text)
    return text


def _has_latin(token: str) -> bool:
    return any("a" <= ch <= "z" for ch in token)


def _looks_latin(token: str, latin_text: bool) -> bool:
    """Whether a folded word's look-alike letters of other scripts are read as Latin."""
    other = _tables()[1]
    if token.isascii() or not any(ord(ch) in other for ch in token):
        return False
    if _has_latin(token):
        return True
    return latin_text and all(ord(ch) in other for ch in token if ch.isalpha())


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch) == "Mc"


def _fold_token(raw: str) -> str:
    """One word of word characters and swapped symbols, as the fold writes it."""
    core = raw.strip("!")  # "wow!" ends a sentence; "sh!t" hides an i
    # Swaps apply inside words and to pure-symbol tokens ("@$$"), never to numbers ("$100").
    if any(ch.isalpha() for ch in core) or not any(ch.isdigit() for ch in core):
        core = core.translate(_LEET)
    core = core.translate(_NO_SYMBOLS)
    return _STRETCHED.sub(r"\1\1\1", core)


def _letter(text: str) -> str:
    """One character as the fold sees it before its tokens are cut (case, marks, strokes)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(
        ch
        for ch in unicodedata.normalize("NFKD", text)
        if unicodedata.category(ch) not in _DROPPED_MARKS
    )
    return "".join(_LETTER_FIXES.get(ch, ch) for ch in text)


@functools.cache
def _tables() -> tuple[dict[int, str], dict[int, str]]:
    """Translation tables from folded letters to their Latin prototypes: (Latin script, others).

    Built once from the TR39 data: a letter whose confusables include exactly
    one plain Latin spelling maps to it. A small letter's own entry wins over
    its capital's ("і" looks like i, "І" like l); a capital's entry serves a
    small letter that has none of its own (Cyrillic "к" from "К"). "rn" is
    TR39's prototype of "m" and reads as "m".
    """
    from confusable_homoglyphs.categories import alias
    from confusable_homoglyphs.confusables import confusables_data

    latin: dict[int, str] = {ord(k): v for k, v in _LETTER_FIXES.items()}
    other: dict[int, str] = {}
    seen: set[str] = set()
    keys = [k for k in confusables_data if len(k) == 1]
    for own in (True, False):
        for key in keys:
            letter = _letter(key)
            if (
                (letter == key) != own
                or letter in seen
                or len(letter) != 1
                or letter.isascii()
                or not unicodedata.category(letter).startswith("L")
                or unicodedata.name(letter, "").startswith(UNSPACED_SCRIPTS)
            ):
                continue
            spellings = {_letter(g["c"].replace("\u200e", "")) for g in confusables_data[key]}
            prototypes = {"m" if s == "rn" else s for s in spellings if _PROTOTYPE.fullmatch(s)}
            if len(prototypes) != 1:
                continue
            seen.add(letter)
            table = latin if alias(letter) == "LATIN" else other
            table.setdefault(ord(letter), prototypes.pop())
    return latin, other


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


def stray_letters_joined(joined: str) -> tuple[str, ...]:
    """``joined`` with each letter that stands alone beside a word joined to the word before
    it, and (the second view) to the word after it.

    "the kil l switch" -> ("the kill switch", "the kil lswitch"). Only long
    entries are matched on these views (see ``hailuo.moderation.screening``): joining
    is how "kil l" hides "kill", and how "ca t" would wrongly read as "cat".
    """
    tokens = joined.split(" ")
    if len(tokens) < 2 or all(len(t) != 1 for t in tokens):
        return ()
    views = []
    for step in (-1, 1):
        out = list(tokens)
        for i, token in enumerate(tokens):
            j = i + step
            if len(token) == 1 and token.isalpha() and 0 <= j < len(tokens) and len(tokens[j]) > 1:
                out[j] = out[j] + token if step < 0 else token + out[j]
                out[i] = ""
        views.append(" ".join(t for t in out if t))
    return tuple(v for v in dict.fromkeys(views) if v != joined)


@dataclass(frozen=True)
class ScreenViews:
    """A prompt's views, folded once, as UTF-8 for the linear-time engine.

    ``words``: the folded text and its joined view (and both without
    other-script look-alikes when that differs); ``runs``: letters spelled
    apart, joined; ``strays``: views with one lone letter joined to a
    neighbour. Regex entries run on ``words`` cut to ``MAX_SCREENED_CHARS``.
    """

    words: tuple[bytes, ...]
    runs: tuple[bytes, ...]
    strays: tuple[bytes, ...]
    cut: tuple[bytes, ...]


def screen_views(text: str) -> ScreenViews:
    """Every view of ``text`` the blocklist's rules run on (see ``ScreenViews``)."""
    words: list[str] = []
    runs: list[str] = []
    strays: list[str] = []
    for folded in dict.fromkeys(_fold(text, None)):
        joined, found = joined_runs(folded)
        words += (folded, joined) if joined != folded else (folded,)
        runs += found
    # A letter split off by an apostrophe is a contraction, not an evasion: "it's hit"
    # must not read as "s hit" (nor "he'll" as "hell": the contraction itself is no view).
    contracted = _APOSTROPHE.sub("", text)
    for folded in dict.fromkeys(_fold(contracted, None)) if contracted != text else words:
        strays += stray_letters_joined(folded)
        strays += stray_letters_joined(joined_runs(folded)[0])
    unique = [list(dict.fromkeys(views)) for views in (words, runs, strays)]
    encoded = [tuple(v.encode() for v in views) for views in unique]
    cut = tuple(v[:MAX_SCREENED_CHARS].encode() for v in unique[0])
    return ScreenViews(encoded[0], encoded[1], encoded[2], cut)
