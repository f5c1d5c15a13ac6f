"""What a member asked for (``JobSpec``) and the model rules it must obey.

The rules are data (``MODEL_RULES``) read by one validator (``check_spec``),
so a message can be rendered from the rule's own numbers and a new model is a
new row, not a new ``if``. What each provider offers narrows these rules
further (``hailuo.jobs.capabilities``).

The numbers are seed 001's tables (MiniMax, the model's maker):

==========================  =============================  ==========================
model                       modes                          resolution: durations
==========================  =============================  ==========================
MiniMax-Hailuo-02           text, image, first+last frame  512P (image only): 6/10,
                                                           768P: 6/10, 1080P: 6
MiniMax-Hailuo-2.3          text, image                    768P: 6/10, 1080P: 6
MiniMax-Hailuo-2.3-Fast     image                          768P: 6/10, 1080P: 6
==========================  =============================  ==========================

First+last frame is Hailuo-02 only and has no 512P (providers.md §2); 2.3-Fast
is image-to-video only (seed 001's text-to-video model list lacks it).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType

from hailuo.model.camera import CameraPrompt, Spelling, parse_prompt
from hailuo.model.errors import UserInputError

PROMPT_MAX_CHARS = 2000


class Mode(enum.StrEnum):
    TEXT = "t2v"  # text to video
    IMAGE = "i2v"  # first frame (+ optional prompt) to video
    FIRST_LAST = "fl2v"  # first and last frame to video


#: Every resolution the bot knows, lowest first (the order choices and messages use).
RESOLUTIONS: tuple[str, ...] = ("512P", "768P", "1080P")


@dataclass(frozen=True)
class ModelRule:
    """What one model accepts: resolution -> durations, and which modes each resolution serves."""

    name: str
    modes: frozenset[Mode]
    durations: dict[str, frozenset[int]]
    resolution_modes: dict[str, frozenset[Mode]]
    default_resolution: str = "768P"

    def resolutions_for(self, mode: Mode) -> list[str]:
        if mode not in self.modes:
            return []
        return [res for res, modes in self.resolution_modes.items() if mode in modes]


_ALL_MODES = frozenset(Mode)
_IMAGE_ONLY = frozenset({Mode.IMAGE})
_NOT_FIRST_LAST = frozenset({Mode.TEXT, Mode.IMAGE})

#: Seed 001's table for MiniMax-Hailuo-02: 512P (image-to-video only) 6/10 s,
#: 768P 6/10 s, 1080P 6 s only; first+last frame has no 512P.
HAILUO_02 = ModelRule(
    name="MiniMax-Hailuo-02",
    modes=_ALL_MODES,
    durations={"512P": frozenset({6, 10}), "768P": frozenset({6, 10}), "1080P": frozenset({6})},
    resolution_modes={"512P": _IMAGE_ONLY, "768P": _ALL_MODES, "1080P": _ALL_MODES},
)
#: Seed 001: no 512P; first+last frame is Hailuo-02 only.
HAILUO_23 = ModelRule(
    name="MiniMax-Hailuo-2.3",
    modes=_NOT_FIRST_LAST,
    durations={"768P": frozenset({6, 10}), "1080P": frozenset({6})},
    resolution_modes={"768P": _NOT_FIRST_LAST, "1080P": _NOT_FIRST_LAST},
)
#: Seed 001 (its text-to-video models lack it) and providers.md §2: image-to-video only.
HAILUO_23_FAST = ModelRule(
    name="MiniMax-Hailuo-2.3-Fast",
    modes=_IMAGE_ONLY,
    durations={"768P": frozenset({6, 10}), "1080P": frozenset({6})},
    resolution_modes={"768P": _IMAGE_ONLY, "1080P": _IMAGE_ONLY},
)

MODEL_RULES: dict[str, ModelRule] = {
    rule.name: rule for rule in (HAILUO_02, HAILUO_23, HAILUO_23_FAST)
}
DEFAULT_MODEL = HAILUO_02.name

#: The optional switches a provider may or may not take, with the API's default
#: (seed 001). A spec that leaves one at its default needs nothing of the provider.
OPTION_DEFAULTS: Mapping[str, bool] = MappingProxyType(
    {"prompt_optimizer": True, "fast_pretreatment": False}
)


def models_for(*modes: Mode) -> list[str]:
    """The models that can make videos of one of ``modes``, in table order."""
    return [name for name, rule in MODEL_RULES.items() if rule.modes.intersection(modes)]


def resolutions_offered(*modes: Mode) -> list[str]:
    """The resolutions some model offers for one of ``modes``, lowest first."""
    return [
        res
        for res in RESOLUTIONS
        if any(res in rule.resolutions_for(mode) for rule in MODEL_RULES.values() for mode in modes)
    ]


@dataclass(frozen=True)
class JobSpec:
    """One generation request, free of Discord and of any provider's spelling.

    Images are not held here: their checked, prepared bytes are stored with the
    job and handed to the provider beside the spec.
    """

    mode: Mode
    prompt: str = ""
    model: str = DEFAULT_MODEL
    duration: int = 6
    resolution: str = "768P"
    prompt_optimizer: bool = True
    fast_pretreatment: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        data["mode"] = Mode(data["mode"])
        # A field an older version stored and this one dropped is ignored, not fatal.
        return cls(**{key: value for key, value in data.items() if key in _SPEC_FIELDS})

    def options(self) -> dict[str, bool]:
        """The optional switches, by the names of ``OPTION_DEFAULTS``."""
        return {
            "prompt_optimizer": self.prompt_optimizer,
            "fast_pretreatment": self.fast_pretreatment,
        }


#: ``JobSpec``'s field names, once (every job read decodes its spec: 10,000 at a restart).
_SPEC_FIELDS = frozenset(f.name for f in fields(JobSpec))


def check_prompt(
    prompt: str, *, required: bool, spellings: Collection[Spelling] | None = None
) -> CameraPrompt:
    """Emptiness, camera syntax, then the length as sent in each of ``spellings``.

    The 2000-character limit counts the prompt as the provider receives it, with
    its camera commands in that provider's spelling; the longest wins. ``None``
    means every spelling (the strictest, for a caller that knows no provider);
    an empty collection skips the length check.
    """
    if required and not prompt.strip():
        raise UserInputError("prompt.empty", minimum=1)
    parsed = parse_prompt(prompt)  # camera.unbalanced / camera.empty / camera.unknown
    check_prompt_length(parsed, tuple(Spelling) if spellings is None else spellings)
    return parsed


def check_prompt_length(parsed: CameraPrompt, spellings: Collection[Spelling]) -> None:
    """``prompt.too_long`` when the prompt as sent in any of ``spellings`` is over the limit."""
    longest = max((len(parsed.render(spelling)) for spelling in spellings), default=0)
    if longest > PROMPT_MAX_CHARS:
        raise UserInputError("prompt.too_long", maximum=PROMPT_MAX_CHARS, actual=longest)
