"""What a member asked for (``JobSpec``) and the model rules it must obey.

The rules are data (``MODEL_RULES``) read by one validator, so a message can
be rendered from the rule's own numbers and a new model is a new row, not a
new ``if``. Provider-specific capabilities narrow these rules further.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hailuo.errors import UserInputError

PROMPT_MAX_CHARS = 2000


class Mode(enum.StrEnum):
    TEXT = "t2v"  # text to video
    IMAGE = "i2v"  # first frame (+ optional prompt) to video
    FIRST_LAST = "fl2v"  # first and last frame to video


@dataclass(frozen=True)
class ModelRule:
    """What one model accepts: resolution -> durations, and which modes each resolution serves."""

    name: str
    modes: frozenset[Mode]
    durations: dict[str, frozenset[int]]
    resolution_modes: dict[str, frozenset[Mode]]
    default_resolution: str = "768P"

    def resolutions_for(self, mode: Mode) -> list[str]:
        return [res for res, modes in self.resolution_modes.items() if mode in modes]


_ALL_MODES = frozenset(Mode)
_IMAGE_ONLY = frozenset({Mode.IMAGE})

#: Seed 001's table for MiniMax-Hailuo-02: 512P (image-to-video only) 6/10 s,
#: 768P 6/10 s, 1080P 6 s only; first+last frame has no 512P.
HAILUO_02 = ModelRule(
    name="MiniMax-Hailuo-02",
    modes=_ALL_MODES,
    durations={"512P": frozenset({6, 10}), "768P": frozenset({6, 10}), "1080P": frozenset({6})},
    resolution_modes={"512P": _IMAGE_ONLY, "768P": _ALL_MODES, "1080P": _ALL_MODES},
)

MODEL_RULES: dict[str, ModelRule] = {HAILUO_02.name: HAILUO_02}
DEFAULT_MODEL = HAILUO_02.name


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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        data["mode"] = Mode(data["mode"])
        return cls(**data)


def check_prompt(prompt: str, *, required: bool) -> None:
    """Prompt length, counted in characters as Python (and the providers) count them."""
    if required and not prompt.strip():
        raise UserInputError("prompt.empty", minimum=1)
    if len(prompt) > PROMPT_MAX_CHARS:
        raise UserInputError("prompt.too_long", maximum=PROMPT_MAX_CHARS, actual=len(prompt))


def check_spec(spec: JobSpec) -> None:
    """Every rule of the model that needs no download, raising the first one broken."""
    check_prompt(spec.prompt, required=spec.mode is Mode.TEXT)
    rule = MODEL_RULES.get(spec.model)
    if rule is None:
        raise UserInputError("spec.model", model=spec.model, allowed=tuple(MODEL_RULES))
    if spec.mode not in rule.modes:
        raise UserInputError("spec.mode", model=rule.name, mode=spec.mode.value)
    allowed_res = rule.resolutions_for(spec.mode)
    if spec.resolution not in allowed_res:
        raise UserInputError(
            "spec.resolution",
            model=rule.name,
            mode=spec.mode.value,
            resolution=spec.resolution,
            allowed=tuple(allowed_res),
        )
    durations = rule.durations[spec.resolution]
    if spec.duration not in durations:
        raise UserInputError(
            "spec.duration",
            model=rule.name,
            resolution=spec.resolution,
            duration=spec.duration,
            allowed=tuple(sorted(durations)),
        )
