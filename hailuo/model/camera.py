r"""The 15 Hailuo camera commands, their two spellings, and prompt parsing.

A member writes camera commands in square brackets inside the prompt, in
English (``[Pan left,Pedestal up]``) or Chinese (``[左摇,上升]``), mixed if they
like. Each provider understands one spelling only (providers.md §5b), so the
prompt is parsed once into text and command groups and rendered again in the
spelling of the provider it is sent to. The 2000-character limit counts the
prompt as sent, hence :func:`sent_length`.

A bracket that holds a camera command, or something close to one (a typo),
is read as a command group: a typo is refused with the nearest commands, since
the model would read it as a command anyway. A bracket close to no command at
all ("a sign saying [OPEN]") is the member's text and is sent on as written.
``\[`` and ``\]`` write a literal bracket, for text that looks like a command.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hailuo.model.errors import UserInputError

#: Commands one bracket should hold at most (seeds 001, 002, 004); more is
#: accepted with a warning.
MAX_RECOMMENDED_PER_GROUP = 3


class Spelling(enum.StrEnum):
    """Which form of the commands a provider understands."""

    ENGLISH = "english"
    CHINESE = "chinese"


@dataclass(frozen=True)
class CameraCommand:
    """One camera command in both spellings; its help text is in the message catalog."""

    english: str
    chinese: str

    def spelled(self, spelling: Spelling) -> str:
        return self.english if spelling is Spelling.ENGLISH else self.chinese

    @property
    def key(self) -> str:
        """A stable id from the English name (``pan_left``); the catalog describes it as
        ``camera.describe.<key>``."""
        return "_".join(self.english.casefold().split())


#: The 15 commands, in the order of seed 001; pairs from providers.md §5b.
COMMANDS: tuple[CameraCommand, ...] = (
    CameraCommand("Truck left", "左移"),
    CameraCommand("Truck right", "右移"),
    CameraCommand("Pan left", "左摇"),
    CameraCommand("Pan right", "右摇"),
    CameraCommand("Push in", "推进"),
    CameraCommand("Pull out", "拉远"),
    CameraCommand("Pedestal up", "上升"),
    CameraCommand("Pedestal down", "下降"),
    CameraCommand("Tilt up", "上摇"),
    CameraCommand("Tilt down", "下摇"),
    CameraCommand("Zoom in", "变焦推近"),
    CameraCommand("Zoom out", "变焦拉远"),
    CameraCommand("Shake", "晃动"),
    CameraCommand("Tracking shot", "跟随"),
    CameraCommand("Static shot", "固定"),
)

#: English names for the slash command's ``camera`` choice option (≤ 25).
CHOICES: list[str] = [command.english for command in COMMANDS]

# Seed 001's own example writes "[Push out]", which its list lacks.
_PUSH_OUT = "push out"
_BY_ENGLISH = {command.english.casefold(): command for command in COMMANDS}
_BY_CHINESE = {command.chinese: command for command in COMMANDS}
_BY_ENGLISH_NAME = {command.english: command for command in COMMANDS}
# Every spelling difflib may suggest from, mapped to the English name shown.
_SUGGESTABLE = {
    **{k: c.english for k, c in _BY_ENGLISH.items()},
    **{k: c.english for k, c in _BY_CHINESE.items()},
}
_SEPARATORS = re.compile(r"[,，、]")
_BRACKETS = re.compile(r"\\[\[\]]|[\[\]]")
#: An escaped bracket (``\[``, ``\]``) in free text, sent as the bare bracket.
_ESCAPED = re.compile(r"\\([\[\]])")


@dataclass(frozen=True)
class CameraWarning:
    """Something accepted but worth telling the member; text comes from the catalog."""

    code: str
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class CommandGroup:
    """Commands in one bracket: they act together."""

    commands: tuple[CameraCommand, ...]

    def render(self, spelling: Spelling) -> str:
        return "[" + ",".join(c.spelled(spelling) for c in self.commands) + "]"


#: A prompt piece: free text (literal brackets only) or a command group.
Segment = str | CommandGroup


@dataclass(frozen=True)
class CameraPrompt:
    """A parsed prompt: text and command groups in order, plus warnings."""

    segments: tuple[Segment, ...]
    warnings: tuple[CameraWarning, ...] = ()

    @property
    def groups(self) -> tuple[CommandGroup, ...]:
        return tuple(s for s in self.segments if isinstance(s, CommandGroup))

    def render(self, spelling: Spelling) -> str:
        """The prompt as sent: groups in ``spelling``, text untouched."""
        return "".join(
            s.render(spelling) if isinstance(s, CommandGroup) else s for s in self.segments
        )

    def camera_free_text(self) -> str:
        """The prompt without its command groups, for prompt screening.

        A group between two words becomes one space, so the words stay apart
        as the model sees them; the result is stripped.
        """
        pieces = [""]  # the text between groups
        for segment in self.segments:
            if isinstance(segment, CommandGroup):
                pieces.append("")
            else:
                pieces[-1] += segment
        text = pieces[0]
        for piece in pieces[1:]:
            if text[-1:].isalnum() and piece[:1].isalnum():
                text += " "
            text += piece
        return text.strip()


def _normalise(item: str) -> str:
    return " ".join(item.split()).casefold()


def _lookup(item: str) -> CameraCommand | None:
    key = _normalise(item)
    return _BY_ENGLISH.get(key) or _BY_CHINESE.get(key.replace(" ", ""))


def _suggestions(item: str) -> tuple[str, ...]:
    key = _normalise(item)
    found: list[str] = []
    for cutoff in (0.6, 0.5):  # Chinese names are 2-4 characters: one typo is 0.5
        for match in difflib.get_close_matches(key, _SUGGESTABLE, n=6, cutoff=cutoff):
            if _SUGGESTABLE[match] not in found:
                found.append(_SUGGESTABLE[match])
        if found:
            break
    return tuple(found[:3])


def _is_literal(items: list[str]) -> bool:
    """Whether a bracket's items are text: no command, no near-miss of one.

    Such a bracket ("[OPEN]", "[SALE 50% off]") cannot be a mistyped command,
    so it is the member's words and refusing it would only get in the way.
    """
    return all(
        _lookup(item) is None and _normalise(item) != _PUSH_OUT and not _suggestions(item)
        for item in items
    )


def _parse_group(
    content: str, position: int, number: int, warnings: list[CameraWarning]
) -> CommandGroup | None:
    """The group in one bracket, or ``None`` when the bracket is plain text."""
    items = [item.strip() for item in _SEPARATORS.split(content)]
    items = [item for item in items if item]  # "[Pan left, ]" is a harmless slip
    if not items:
        raise UserInputError("camera.empty", position=position)
    if _is_literal(items):
        return None
    commands: list[CameraCommand] = []
    for item in items:
        command = _lookup(item)
        if command is None and _normalise(item) == _PUSH_OUT:
            command = _BY_ENGLISH_NAME["Pull out"]
            _warn(warnings, "camera.push_out_alias", written=item, meaning=command.english)
        if command is None:
            raise UserInputError("camera.unknown", command=item, suggestions=_suggestions(item))
        commands.append(command)
    if len(commands) > MAX_RECOMMENDED_PER_GROUP:
        _warn(
            warnings,
            "camera.too_many_in_group",
            group=number,
            count=len(commands),
            maximum=MAX_RECOMMENDED_PER_GROUP,
        )
    return CommandGroup(tuple(commands))


def _warn(warnings: list[CameraWarning], code: str, **params: object) -> None:
    warning = CameraWarning(code, MappingProxyType(params))
    if warning not in warnings:
        warnings.append(warning)


def parse_prompt(prompt: str) -> CameraPrompt:
    """Split ``prompt`` into text and camera command groups.

    Raises ``UserInputError`` with ``camera.unbalanced`` (``position``,
    ``bracket``), ``camera.empty`` (``position``) or ``camera.unknown``
    (``command``, ``suggestions``). Positions are 0-based character offsets
    of the offending bracket. A bracket close to no command stays text, and
    an escaped bracket (``\\[``) is text without its backslash.
    """
    segments: list[Segment] = []
    warnings: list[CameraWarning] = []
    start = 0  # where the current text segment begins
    opened: int | None = None

    def text(piece: str) -> None:
        piece = _ESCAPED.sub(r"\1", piece)
        if segments and isinstance(segments[-1], str):
            segments[-1] += piece
        elif piece:
            segments.append(piece)

    for match in _BRACKETS.finditer(prompt):
        at = match.start()
        if match.group().startswith("\\"):
            continue  # escaped: part of the text around it
        if match.group() == "[":
            if opened is not None:
                raise UserInputError("camera.unbalanced", position=at, bracket="[")
            text(prompt[start:at])
            opened = at
        else:
            if opened is None:
                raise UserInputError("camera.unbalanced", position=at, bracket="]")
            number = sum(isinstance(s, CommandGroup) for s in segments) + 1
            group = _parse_group(prompt[opened + 1 : at], opened, number, warnings)
            if group is None:
                text(prompt[opened : at + 1])
            else:
                segments.append(group)
            opened = None
            start = at + 1
    if opened is not None:
        raise UserInputError("camera.unbalanced", position=opened, bracket="[")
    text(prompt[start:])
    return CameraPrompt(tuple(segments), tuple(warnings))


def sent_length(prompt: str, spelling: Spelling) -> int:
    """Characters of ``prompt`` as sent in ``spelling`` (what the 2000 limit counts)."""
    return len(parse_prompt(prompt).render(spelling))


def append_command(prompt: str, command: str) -> str:
    """``prompt`` with `` [Command]`` appended (the slash command's ``camera`` option).

    ``command`` may be either spelling; it is appended in canonical English.
    """
    found = _lookup(command)
    if found is None:
        raise UserInputError("camera.unknown", command=command, suggestions=_suggestions(command))
    tag = f"[{found.english}]"
    body = prompt.rstrip()
    return f"{body} {tag}" if body else tag
