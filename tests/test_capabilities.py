"""The capability tables of the five providers (and the demo), from the seeds' numbers."""

from __future__ import annotations

import ast
import itertools
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from hailuo.i18n.messages import CATALOG, placeholders, render
from hailuo.jobs import capabilities
from hailuo.jobs.capabilities import (
    RULES,
    can_serve,
    data_url_budget,
    image_plan,
    offered,
    serving_providers,
    validate,
)
from hailuo.media import images, preparing
from hailuo.model import camera
from hailuo.model.camera import Spelling
from hailuo.model.capability import Offer, Table
from hailuo.model.errors import UserInputError
from hailuo.model.provider import PreparedInput
from hailuo.model.spec import MODEL_RULES, JobSpec, Mode
from providers.registry import SPELLINGS, TABLE, spelling_for
from tests import image_corpus as corpus

ROOT = Path(__file__).resolve().parent.parent
TXT, IMG, FLF = Mode.TEXT, Mode.IMAGE, Mode.FIRST_LAST
H02, H23, H23F = "MiniMax-Hailuo-02", "MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast"
PROVIDERS = ("minimax", "freepik", "novita", "odkkk", "gptge")

# --- the matrix, written out from the seeds -----------------------------------------------

_FULL = {"512P": {6, 10}, "768P": {6, 10}, "1080P": {6}}  # seed 001 / 002 / 004: 512P I2V only
_NO_512 = {"768P": {6, 10}, "1080P": {6}}  # seed 000 (tiers 768p, 1080p) / seed 003
#: What MiniMax and gpt.ge serve (seeds 001, 004: all three models).
_ALL_MODELS = {
    (H02, TXT): _NO_512,
    (H02, IMG): _FULL,
    (H02, FLF): _NO_512,  # first+last frame: no 512P
    (H23, TXT): _NO_512,
    (H23, IMG): _NO_512,
    (H23F, IMG): _NO_512,
}
EXPECTED: dict[str, dict[tuple[str, Mode], dict[str, set[int]]]] = {
    "minimax": _ALL_MODELS,
    "gptge": _ALL_MODELS,
    "odkkk": {
        (H02, TXT): _NO_512,
        (H02, IMG): _FULL,
        (H02, FLF): _NO_512,
    },  # seed 002: 512p I2V only
    "freepik": {(H02, TXT): _NO_512, (H02, IMG): _NO_512, (H02, FLF): _NO_512},
    "novita": {(H02, TXT): _NO_512, (H02, IMG): _NO_512, (H02, FLF): _NO_512},
}
EXPECTED["demo"] = _ALL_MODELS  # everything the model rules allow


def served(provider: str, model: str, mode: Mode) -> dict[str, set[int]]:
    """What ``can_serve`` accepts, found by trying every resolution and duration."""
    found: dict[str, set[int]] = {}
    for resolution, duration in itertools.product(("512P", "720P", "768P", "1080P"), (5, 6, 10)):
        spec = JobSpec(mode=mode, prompt="p", model=model, resolution=resolution, duration=duration)
        if can_serve(provider, spec, TABLE):
            found.setdefault(resolution, set()).add(duration)
    return found


@pytest.mark.parametrize("provider", [*PROVIDERS, "demo"])
@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("model", [H02, H23, H23F])
def test_the_matrix_is_the_seeds(provider: str, model: str, mode: Mode) -> None:
    expected = EXPECTED[provider].get((model, mode), {})
    assert served(provider, model, mode) == expected
    assert {r: set(d) for r, d in TABLE[provider].offers(model, mode).items()} == expected


def test_the_table_lists_every_provider_and_no_other() -> None:
    assert set(TABLE) == {*PROVIDERS, "demo"} == set(SPELLINGS)
    assert {name for name, cap in TABLE.items() if cap.name != name} == set()
    assert [TABLE[p].label for p in PROVIDERS] == [
        "MiniMax",
        "Freepik",
        "Novita",
        "odkkk",
        "gpt.ge",
    ]


@pytest.mark.parametrize(
    ("provider", "options"),
    [
        ("minimax", {"prompt_optimizer", "fast_pretreatment"}),
        ("freepik", {"prompt_optimizer"}),  # seed 000 has no fast_pretreatment
        ("novita", {"prompt_optimizer", "fast_pretreatment"}),  # enable_prompt_expansion
        ("odkkk", {"prompt_optimizer", "fast_pretreatment"}),  # model_params
        ("gptge", {"prompt_optimizer", "fast_pretreatment"}),
        ("demo", {"prompt_optimizer", "fast_pretreatment"}),
    ],
)
def test_options_per_provider(provider: str, options: set[str]) -> None:
    assert TABLE[provider].options == options
    fast = JobSpec(mode=TXT, prompt="p", fast_pretreatment=True)
    plain = JobSpec(mode=TXT, prompt="p", prompt_optimizer=False)
    assert can_serve(provider, fast, TABLE) is ("fast_pretreatment" in options)
    assert can_serve(provider, plain, TABLE) is ("prompt_optimizer" in options)


@pytest.mark.parametrize("provider", [*PROVIDERS, "demo"])
def test_image_rules_per_provider(provider: str) -> None:
    rules = TABLE[provider].images
    expected = {"JPEG", "PNG"} if provider == "freepik" else {"JPEG", "PNG", "WEBP"}
    assert rules.formats == expected  # Freepik lists JPG/JPEG/PNG only (seed 000)
    assert (rules.max_bytes, rules.min_short_edge) == (20_000_000, 301)
    assert (rules.aspect_min, rules.aspect_max) == ((2, 5), (5, 2))


# --- spellings, for adapters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "resolution", "res_1080", "first", "last", "optimizer", "fast", "camera_spelling"),
    [
        ("minimax", "resolution", "1080P", "first_frame_image", "last_frame_image",
         "prompt_optimizer", "fast_pretreatment", Spelling.ENGLISH),
        ("freepik", None, "1080p", "first_frame_image", "last_frame_image",
         "prompt_optimizer", None, Spelling.ENGLISH),
        ("novita", "resolution", "1080P", "image", "end_image",
         "enable_prompt_expansion", "fast_pretreatment", Spelling.ENGLISH),
        ("odkkk", "quality", "1080p", "image_urls[0]", "image_urls[1]",
         "model_params.prompt_optimizer", "model_params.fast_pretreatment", Spelling.ENGLISH),
        ("gptge", "resolution", "1080P", "first_frame_image", "last_frame_image",
         "prompt_optimizer", "fast_pretreatment", Spelling.CHINESE),
    ],
)  # fmt: skip
def test_spellings(
    provider: str,
    resolution: str | None,
    res_1080: str,
    first: str,
    last: str,
    optimizer: str,
    fast: str | None,
    camera_spelling: Spelling,
) -> None:
    words = SPELLINGS[provider]
    assert (words.resolution, words.resolution_values["1080P"]) == (resolution, res_1080)
    assert (words.first_frame, words.last_frame) == (first, last)
    assert (words.prompt_optimizer, words.fast_pretreatment) == (optimizer, fast)
    assert words.camera is camera_spelling is spelling_for(provider)
    assert set(words.resolution_values) == set(TABLE[provider].offers(H02, IMG))
    assert words.prompt_required is (provider in ("freepik", "novita"))


def _body(provider: str, spec: JobSpec) -> dict[str, object]:
    from providers.registry import ADAPTERS

    adapter = ADAPTERS[provider](None, api_key="key", base_url="http://127.0.0.1:1")
    job = PreparedInput(
        spec=spec, first_frame="data:image/png;base64,AAAA", last_frame="data:image/png;base64,BBBB"
    )
    return adapter.submit_body(job)  # type: ignore[attr-defined, no-any-return]


def _at(body: object, path: str) -> object:
    for part in path.replace("]", "").replace("[", ".").split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]  # type: ignore[index]
    return body


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_adapters_spell_bodies_as_the_table_says(provider: str) -> None:
    """The table is what the adapters send today, so they can read it instead."""
    words = SPELLINGS[provider]
    spec = JobSpec(mode=FLF, prompt="dawn [Pan left]", resolution="1080P", fast_pretreatment=True)
    body = _body(provider, spec)
    assert str(_at(body, words.first_frame)).endswith("AAAA")
    assert str(_at(body, words.last_frame)).endswith("BBBB")
    assert _at(body, words.prompt_optimizer) is True
    if words.fast_pretreatment:
        assert _at(body, words.fast_pretreatment) is True
    if words.resolution:
        assert _at(body, words.resolution) == words.resolution_values["1080P"]
    if words.model:
        assert _at(body, words.model) == H02
    expected = "[左摇]" if words.camera is Spelling.CHINESE else "[Pan left]"
    assert expected in str(_at(body, words.prompt))
    encoded = str(_at(body, words.first_frame))
    assert encoded.startswith("data:") is (words.image_encoding == "data_url")


# --- the validator: routing and refusals ------------------------------------------------------


def refused(spec: JobSpec, order: list[str], table: Table = TABLE) -> UserInputError:
    with pytest.raises(UserInputError) as info:
        validate(spec, order, table)
    return info.value


def text_of(error: UserInputError) -> str:
    return render(error.rule, None, **error.params)


I512 = JobSpec(mode=IMG, resolution="512P")


def test_512p_image_to_video_is_refused_on_freepik_and_novita() -> None:
    error = refused(I512, ["freepik", "novita"])
    assert error.rule == "capability.resolution"
    assert text_of(error) == (
        "512P is not offered for image-to-video by Freepik or Novita, the providers this "
        "server uses; choose 768P or 1080P."
    )
    assert text_of(refused(I512, ["novita"])).startswith(
        "512P is not offered for image-to-video by Novita,"
    )


def test_a_request_some_providers_serve_is_routed_to_them() -> None:
    assert serving_providers(I512, ["freepik", "minimax", "novita", "odkkk"], TABLE) == [
        "minimax",
        "odkkk",
    ]
    assert serving_providers(JobSpec(mode=TXT, prompt="p"), list(PROVIDERS), TABLE) == list(
        PROVIDERS
    )
    fast = JobSpec(mode=IMG, fast_pretreatment=True)
    assert serving_providers(fast, ["freepik", "novita"], TABLE) == ["novita"]
    h23 = JobSpec(mode=TXT, prompt="p", model=H23)
    assert serving_providers(h23, list(PROVIDERS), TABLE) == ["minimax", "gptge"]


def test_the_model_rule_comes_before_the_providers() -> None:
    error = refused(JobSpec(mode=FLF, resolution="512P"), ["minimax"])
    assert error.rule == "spec.resolution"  # the model's own rule, whoever serves it
    assert refused(JobSpec(mode=TXT, prompt="p", model=H23F), ["minimax"]).rule == "spec.model_mode"


def test_models_and_options_a_server_lacks() -> None:
    error = refused(JobSpec(mode=IMG, model=H23F), ["freepik", "novita", "odkkk"])
    assert text_of(error) == (
        "MiniMax-Hailuo-2.3-Fast is not offered by Freepik, Novita or odkkk, the providers this "
        "server uses; choose MiniMax-Hailuo-02."
    )
    error = refused(JobSpec(mode=TXT, prompt="p", fast_pretreatment=True), ["freepik"])
    assert text_of(error) == (
        "The fast_pretreatment option is not offered by Freepik, the providers this server "
        "uses; set it to False or leave it out."
    )


def test_the_first_providers_reason_is_given_with_everyone_it_applies_to() -> None:
    # Freepik (first) lacks the model; Novita lacks it too, so both are named.
    spec = JobSpec(mode=IMG, model=H23, fast_pretreatment=True)
    error = refused(spec, ["freepik", "novita"])
    assert (error.rule, error.params["providers"]) == ("capability.model", "Freepik or Novita")


def test_the_prompt_as_sent_to_every_serving_provider_fits() -> None:
    chinese = "x" * 1996 + "[固定]"  # 2000 as gpt.ge gets it, 2009 in English
    spec = JobSpec(mode=TXT, prompt=chinese)
    assert serving_providers(spec, ["gptge"], TABLE) == ["gptge"]
    assert can_serve("gptge", spec, TABLE) and not can_serve("minimax", spec, TABLE)
    error = refused(spec, ["gptge", "minimax"])
    assert (error.rule, dict(error.params)) == (
        "prompt.too_long",
        {"maximum": 2000, "actual": 2009},
    )
    english = JobSpec(mode=TXT, prompt="x" * 1987 + "[Static shot]")
    assert serving_providers(english, list(PROVIDERS), TABLE) == list(PROVIDERS)


def test_no_provider_at_all() -> None:
    assert refused(JobSpec(mode=TXT, prompt="p"), []).rule == "job.no_provider"
    assert refused(JobSpec(mode=TXT, prompt="p"), ["acme"]).rule == "job.no_provider"
    assert serving_providers(JobSpec(mode=TXT, prompt="p"), ["acme", "novita"], TABLE) == ["novita"]
    assert not can_serve("acme", JobSpec(mode=TXT, prompt="p"), TABLE)
    assert not can_serve("minimax", JobSpec(mode=TXT, prompt=""), TABLE)


def test_mode_and_duration_rules_read_the_table() -> None:
    """No provider lacks a mode or a duration today; the rules still read the data."""
    old_freepik = replace(TABLE["freepik"], modes=frozenset({TXT, IMG}))  # seed 000: no last frame
    short_novita = replace(
        TABLE["novita"], resolutions=MappingProxyType({"768P": Offer(frozenset({6}))})
    )
    table = {**TABLE, "freepik": old_freepik, "novita": short_novita}
    error = refused(JobSpec(mode=FLF), ["freepik"], table=table)
    assert text_of(error) == (
        "Freepik, the providers this server uses, do not make first+last frame videos; "
        "they make text-to-video or image-to-video."
    )
    error = refused(JobSpec(mode=TXT, prompt="p", duration=10), ["novita"], table=table)
    assert text_of(error) == (
        "768P videos of 10 seconds are not offered by Novita, the providers this server uses; "
        "choose 6 seconds."
    )


def test_offered_summarises_a_server() -> None:
    summary = offered(["freepik", "novita"], TABLE)
    assert summary[IMG] == ([H02], {"768P": frozenset({6, 10}), "1080P": frozenset({6})})
    summary = offered(["freepik", "minimax"], TABLE)
    assert summary[IMG][0] == [H02, H23, H23F]
    assert list(summary[IMG][1]) == ["512P", "768P", "1080P"]
    assert summary[FLF] == ([H02], {"768P": frozenset({6, 10}), "1080P": frozenset({6})})


# --- images ------------------------------------------------------------------------------------


def test_the_image_plan_is_the_strictest_of_the_servers_providers() -> None:
    plan = image_plan(["minimax", "freepik"], TABLE)
    assert plan.send_formats == {"JPEG", "PNG"}
    assert plan.check.formats == {"JPEG", "PNG", "WEBP"}  # re-encoded, so WebP is fine to upload
    assert plan.check.max_bytes == 20_000_000 and plan.check.min_short_edge == 301
    assert plan.max_bytes == data_url_budget(20_000_000)
    assert image_plan([], TABLE) == image_plan(list(TABLE), TABLE)


def test_freepik_refuses_webp_as_written_but_gets_it_re_encoded() -> None:
    webp = corpus.webp(640, 480)
    with pytest.raises(UserInputError) as info:
        images.inspect(webp, TABLE["freepik"].images)
    assert (info.value.rule, info.value.params["allowed"]) == ("image.format", "JPEG, PNG")
    plan = image_plan(["freepik"], TABLE)
    prepared = preparing.prepare(
        images.inspect(webp, plan.check),
        accepted_formats=plan.send_formats,
        max_bytes=plan.max_bytes,
    )
    assert images.inspect(prepared.data, TABLE["freepik"].images).format in {"JPEG", "PNG"}
    assert len(prepared.data_url()) < TABLE["freepik"].images.max_bytes


@pytest.mark.parametrize("limit", [30, 31, 32, 33, 34, 1000, 20_000_000])
def test_the_data_url_budget_is_exact(limit: int) -> None:
    prefix = len("data:image/jpeg;base64,")
    budget = data_url_budget(limit)

    def url_length(n: int) -> int:
        return prefix + 4 * ((n + 2) // 3)

    assert url_length(budget - 1) < limit <= url_length(budget + 2)


# --- every refusal has one catalog entry, filled by its raise site ----------------------------

_SCANNED = [
    "hailuo/model/spec.py",
    "hailuo/jobs/capabilities.py",
    "hailuo/model/camera.py",
    "hailuo/media/images.py",
    "cogs/generate.py",
    "cogs/help.py",
]


def _literal_calls(path: str) -> list[tuple[str, str, set[str], bool]]:
    """(function, code, keyword names, has **) of every UserInputError/_warn/render call."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in ("UserInputError", "_warn", "render"):
            continue
        args = node.args[1:] if name == "_warn" else node.args
        first = args[0] if args else None
        code = first.value if isinstance(first, ast.Constant) else None
        if code is None and isinstance(first, ast.Attribute) and first.attr == "code":
            code = "<rule>.code"  # a CapabilityRule's own code: see the RULES test below
        keywords = {k.arg for k in node.keywords if k.arg}
        spread = any(k.arg is None for k in node.keywords)
        found.append((name, code, keywords, spread))
    return found


@pytest.mark.parametrize("path", _SCANNED)
def test_every_raise_site_names_a_catalog_entry_and_fills_it(path: str) -> None:
    english = CATALOG["en"]
    for name, code, keywords, spread in _literal_calls(path):
        if name == "render" and code is None:
            continue  # rendering an error's own code: checked where that error is raised
        assert isinstance(code, str), f"{path}: {name}() without a literal rule code"
        if code == "<rule>.code":
            continue
        assert code in english, f"{path}: {code} has no catalog entry"
        if spread:
            continue  # a warning's or error's own params, checked at their raise sites
        missing = placeholders(english[code]) - keywords
        assert not missing, f"{path}: {code} does not supply {sorted(missing)}"


def test_every_capability_rule_has_a_catalog_entry_filled_by_its_params() -> None:
    spec = JobSpec(mode=IMG, resolution="512P", fast_pretreatment=True)
    for rule in RULES:
        template = CATALOG["en"][rule.code]
        assert placeholders(template) <= set(rule.params(spec, [TABLE["freepik"]]))


def test_every_refusal_over_every_server_is_a_rule_with_an_entry() -> None:
    """Every spec of the finite option space, against every set of configured providers."""
    seen: set[str] = set()
    specs = [
        JobSpec(mode=mode, prompt="p", model=model, resolution=res, duration=dur,
                prompt_optimizer=opt, fast_pretreatment=fast)
        for mode, model, res, dur, opt, fast in itertools.product(
            Mode, [*MODEL_RULES, "Sora"], ["512P", "768P", "1080P", "720P"], [6, 10, 5],
            [True, False], [True, False],
        )
    ]  # fmt: skip
    orders = [list(combo) for n in range(1, 6) for combo in itertools.combinations(PROVIDERS, n)]
    for spec in specs:
        for order in orders:
            try:
                serving = validate(spec, order, TABLE)
            except UserInputError as error:
                template = CATALOG["en"][error.rule]
                assert placeholders(template) <= set(error.params), error
                assert "?" not in render(error.rule, None, **error.params)
                seen.add(error.rule)
            else:
                assert serving == [p for p in order if can_serve(p, spec, TABLE)]
                assert serving
    capability_codes = {rule.code for rule in RULES} - {"capability.mode", "capability.duration"}
    assert capability_codes <= seen
    assert {"spec.model", "spec.model_mode", "spec.resolution", "spec.duration"} <= seen


def test_camera_warnings_have_entries() -> None:
    prompt = camera.parse_prompt("a [Push out] then [Pan left,Tilt up,Zoom in,Shake]")
    for warning in prompt.warnings:
        template = CATALOG["en"][warning.code]
        assert placeholders(template) <= set(warning.params)
    assert {w.code for w in prompt.warnings} == {
        "camera.push_out_alias",
        "camera.too_many_in_group",
    }


def test_capabilities_stays_free_of_discord() -> None:
    text = (ROOT / "hailuo" / "jobs" / "capabilities.py").read_text(encoding="utf-8")
    assert "import discord" not in text and "from discord" not in text
    assert capabilities.__all__
