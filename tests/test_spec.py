"""The model rules (seed 001's tables) and the provider-free validator ``check_spec``."""

from __future__ import annotations

import pytest

from hailuo.i18n.terms import MODE_LABELS
from hailuo.jobs.capabilities import check_spec
from hailuo.model.camera import Spelling
from hailuo.model.errors import UserInputError
from hailuo.model.spec import (
    DEFAULT_MODEL,
    MODEL_RULES,
    PROMPT_MAX_CHARS,
    JobSpec,
    Mode,
    check_prompt,
    models_for,
    resolutions_offered,
)

TXT, IMG, FLF = Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST
H02, H23, H23F = "MiniMax-Hailuo-02", "MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast"

#: (model, mode) -> resolution -> durations, written out from seed 001's tables and
#: providers.md §2 (512P image-to-video only; first+last frame Hailuo-02 only, no 512P;
#: 2.3-Fast image-to-video only; 2.3 no 512P; 1080P 6 s only).
SEED_001: dict[tuple[str, Mode], dict[str, set[int]]] = {
    (H02, TXT): {"768P": {6, 10}, "1080P": {6}},
    (H02, IMG): {"512P": {6, 10}, "768P": {6, 10}, "1080P": {6}},
    (H02, FLF): {"768P": {6, 10}, "1080P": {6}},
    (H23, TXT): {"768P": {6, 10}, "1080P": {6}},
    (H23, IMG): {"768P": {6, 10}, "1080P": {6}},
    (H23, FLF): {},
    (H23F, TXT): {},
    (H23F, IMG): {"768P": {6, 10}, "1080P": {6}},
    (H23F, FLF): {},
}


def refusal(spec: JobSpec) -> tuple[str, dict[str, object]]:
    with pytest.raises(UserInputError) as info:
        check_spec(spec)
    return info.value.rule, dict(info.value.params)


def accepted(model: str, mode: Mode) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for resolution in ("512P", "720P", "768P", "1080P"):
        for duration in (5, 6, 10):
            spec = JobSpec(
                mode=mode, prompt="p", model=model, resolution=resolution, duration=duration
            )
            try:
                check_spec(spec)
            except UserInputError:
                continue
            found.setdefault(resolution, set()).add(duration)
    return found


@pytest.mark.parametrize(("model", "mode"), list(SEED_001))
def test_the_model_rules_are_seed_001s_table(model: str, mode: Mode) -> None:
    assert accepted(model, mode) == SEED_001[(model, mode)]


def test_models_and_defaults() -> None:
    assert list(MODEL_RULES) == [H02, H23, H23F]
    assert DEFAULT_MODEL == H02
    assert JobSpec(mode=TXT).model == H02 and JobSpec(mode=TXT).resolution == "768P"
    assert models_for(TXT) == [H02, H23]
    assert models_for(IMG, FLF) == [H02, H23, H23F]
    assert models_for(FLF) == [H02]
    assert resolutions_offered(TXT) == ["768P", "1080P"]
    assert resolutions_offered(IMG, FLF) == ["512P", "768P", "1080P"]


@pytest.mark.parametrize(
    ("spec", "rule", "params"),
    [
        (
            JobSpec(mode=TXT, prompt="p", model="Sora"),
            "spec.model",
            {"model": "Sora", "allowed": (H02, H23, H23F)},
        ),
        (
            JobSpec(mode=TXT, prompt="p", model=H23F),
            "spec.model_mode",
            {
                "model": H23F,
                "mode": "text-to-video",
                "allowed": ("image-to-video",),
                "models": (H02, H23),
            },
        ),
        (
            JobSpec(mode=FLF, model=H23),
            "spec.model_mode",
            {
                "model": H23,
                "mode": "first+last frame",
                "allowed": ("text-to-video", "image-to-video"),
                "models": (H02,),
            },
        ),
        (
            JobSpec(mode=TXT, prompt="p", resolution="512P"),
            "spec.resolution",
            {
                "model": H02,
                "mode": "text-to-video",
                "resolution": "512P",
                "allowed": ("768P", "1080P"),
            },
        ),
        (
            JobSpec(mode=FLF, resolution="512P"),
            "spec.resolution",
            {
                "model": H02,
                "mode": "first+last frame",
                "resolution": "512P",
                "allowed": ("768P", "1080P"),
            },
        ),
        (
            JobSpec(mode=IMG, model=H23, resolution="512P"),
            "spec.resolution",
            {
                "model": H23,
                "mode": "image-to-video",
                "resolution": "512P",
                "allowed": ("768P", "1080P"),
            },
        ),
        (
            JobSpec(mode=IMG, resolution="1080P", duration=10),
            "spec.duration",
            {"model": H02, "resolution": "1080P", "duration": 10, "allowed": (6,)},
        ),
        (
            JobSpec(mode=IMG, resolution="512P", duration=5),
            "spec.duration",
            {"model": H02, "resolution": "512P", "duration": 5, "allowed": (6, 10)},
        ),
        (JobSpec(mode=TXT, prompt="   "), "prompt.empty", {"minimum": 1}),
        (
            JobSpec(mode=TXT, prompt="a cat [Pan lefty]"),
            "camera.unknown",
            {"command": "Pan lefty", "suggestions": ("Pan left",)},
        ),
    ],
)
def test_each_rule_names_itself_with_its_numbers(
    spec: JobSpec, rule: str, params: dict[str, object]
) -> None:
    assert refusal(spec) == (rule, params)


def test_the_mode_labels_cover_every_mode() -> None:
    assert set(MODE_LABELS) == set(Mode)


def test_image_modes_need_no_prompt() -> None:
    check_spec(JobSpec(mode=IMG))
    check_spec(JobSpec(mode=FLF))


def test_the_prompt_length_counts_camera_commands_as_sent() -> None:
    english = "x" * (PROMPT_MAX_CHARS - len("[Static shot]")) + "[Static shot]"
    assert len(english) == PROMPT_MAX_CHARS
    check_prompt(english, required=True)  # the Chinese form is shorter: fits both
    chinese = "x" * (PROMPT_MAX_CHARS - len("[固定]")) + "[固定]"
    check_prompt(chinese, required=True, spellings=(Spelling.CHINESE,))
    with pytest.raises(UserInputError) as info:
        check_prompt(chinese, required=True, spellings=(Spelling.ENGLISH,))
    assert info.value.rule == "prompt.too_long"
    assert dict(info.value.params) == {
        "maximum": PROMPT_MAX_CHARS,
        "actual": PROMPT_MAX_CHARS - len("[固定]") + len("[Static shot]"),
    }
    with pytest.raises(UserInputError):
        check_prompt(chinese, required=True)  # every spelling: the longest wins
    check_prompt("x" * 5000, required=True, spellings=())  # length left to the caller


def test_a_spec_round_trips_through_json_with_every_field() -> None:
    spec = JobSpec(
        mode=FLF,
        prompt="from dawn [左摇,上升] to dusk",
        model=H02,
        duration=10,
        resolution="768P",
        prompt_optimizer=False,
        fast_pretreatment=True,
    )
    assert JobSpec.from_json(spec.to_json()) == spec
    assert spec.options() == {"prompt_optimizer": False, "fast_pretreatment": True}


def test_a_stored_spec_with_a_dropped_field_still_loads() -> None:
    import json

    from hailuo.model.spec import JobSpec, Mode

    spec = JobSpec(mode=Mode.IMAGE, prompt="p", duration=10)
    stored = json.loads(spec.to_json())
    stored["extra"] = {}  # what the first version wrote
    assert JobSpec.from_json(json.dumps(stored)) == spec
