"""Properties of the one validator, over random specs and provider orders.

- Every spec the validator accepts for a provider becomes a request body that passes
  that provider's schema (``tests/schemas``, exported from the seeds) and the documented
  rules a schema cannot express (the simulators' ``rule_problems``), built by the
  provider's own adapter (``submit_body``).
- Every refusal names a rule: a code with a catalog entry whose placeholders the raise
  site filled.
- ``serving_providers`` and the worker's ``can_serve`` agree, and an accepted job has a price.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from hailuo.i18n.messages import CATALOG, placeholders
from hailuo.jobs.capabilities import can_serve, serving_providers, validate
from hailuo.media import images, preparing
from hailuo.model.camera import COMMANDS
from hailuo.model.errors import UserInputError
from hailuo.model.provider import PreparedInput
from hailuo.model.spec import MODEL_RULES, JobSpec, Mode
from hailuo.money.quotas import cost_of
from providers.freepik import FreepikProvider
from providers.minimax import MiniMaxProvider
from providers.registry import ADAPTERS, TABLE
from tests import image_corpus as corpus
from tests.sims import freepik as freepik_sim
from tests.sims import minimax as minimax_sim
from tests.sims import novita as novita_sim
from tests.sims import odkkk as odkkk_sim
from tests.sims.base import SCHEMA_DIR, camera_spelling_problems, schema_errors

PROVIDERS = ("minimax", "freepik", "novita", "odkkk", "gptge")


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@cache
def frames() -> tuple[str, str]:
    """Two real prepared images as data URLs (the simulators' rules look at the bytes)."""
    first, last = (
        preparing.prepare(images.inspect(data), accepted_formats=frozenset({"JPEG", "PNG"}),
                       max_bytes=images.DEFAULT_RULES.max_bytes).data_url()
        for data in (corpus.png(320, 400), corpus.jpeg(640, 360))
    )  # fmt: skip
    return first, last


def adapter(provider: str) -> Any:
    return ADAPTERS[provider](None, api_key="key", base_url="http://127.0.0.1:1")


def prepared(spec: JobSpec) -> PreparedInput:
    first, last = frames()
    return PreparedInput(
        spec=spec,
        first_frame=first if spec.mode is not Mode.TEXT else None,
        last_frame=last if spec.mode is Mode.FIRST_LAST else None,
        callback_url="https://bot.example/callbacks/1",
    )


def minimax_problems(body: dict[str, Any], image: bool) -> list[str]:
    schema = "minimax.video_generation.i2v.json" if image else "minimax.video_generation.t2v.json"
    errors = [e.message for e in validator(schema).iter_errors(body)]
    return errors + minimax_sim.rule_problems(body)


def body_problems(provider: str, spec: JobSpec) -> list[str]:
    job = prepared(spec)
    image = spec.mode is not Mode.TEXT
    if provider == "minimax":
        body = MiniMaxProvider(None, api_key="k", base_url="http://x").submit_body(job)  # type: ignore[arg-type]
        return minimax_problems(body, image) + camera_spelling_problems(
            body.get("prompt"), "english"
        )
    if provider == "freepik":
        # providers/freepik.py exists: its own body, on the tier it would post to.
        fp = FreepikProvider(None, api_key="k", base_url="http://x")  # type: ignore[arg-type]
        body, tier = fp.submit_body(job), fp.tier_for(job)
        i2v = [e.message for e in validator("freepik.hailuo02_768p.i2v.json").iter_errors(body)]
        t2v = [e.message for e in validator("freepik.hailuo02_768p.t2v.json").iter_errors(body)]
        errors = i2v if image else t2v  # an image body must be the "Image to Video" one
        return errors + freepik_sim.rule_problems(tier, body)
    body = adapter(provider).submit_body(job)
    if provider == "novita":
        return schema_errors("novita.json", body) + novita_sim.rule_problems(body)
    if provider == "odkkk":
        return schema_errors("odkkk.json", body) + odkkk_sim.rule_problems(body)
    assert provider == "gptge"
    problems = schema_errors("gptge.json", body) + minimax_sim.rule_problems(body)
    return problems + camera_spelling_problems(body.get("prompt"), "chinese")


_WORDS = [c.english for c in COMMANDS] + [c.chinese for c in COMMANDS] + ["Push out"]
_group = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4).map(
    lambda words: "[" + ",".join(words) + "]"
)
_prompts = st.one_of(
    st.just(""),
    st.sampled_from(["   ", "a cat [Pan lefty]", "[", "a ] b", "[]", "猫 [左摇,上升] 走"]),
    st.builds(
        lambda filler, groups, tail: "x" * filler + "".join(groups) + tail,
        st.one_of(st.integers(0, 40), st.integers(1930, 2010)),
        st.lists(_group, max_size=4),
        st.sampled_from(["", " then it rains", " "]),
    ),
)
specs = st.builds(
    JobSpec,
    mode=st.sampled_from(list(Mode)),
    prompt=_prompts,
    model=st.sampled_from([*MODEL_RULES, "Sora"]),
    duration=st.sampled_from([6, 10, 5]),
    resolution=st.sampled_from(["512P", "768P", "1080P", "720P"]),
    prompt_optimizer=st.booleans(),
    fast_pretreatment=st.booleans(),
)


def assert_names_a_rule(error: UserInputError) -> None:
    assert error.rule in CATALOG["en"], error
    missing = placeholders(CATALOG["en"][error.rule]) - set(error.params)
    assert not missing, f"{error.rule} lacks {missing}"


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=250, deadline=None)
@given(spec=specs)
def test_accepted_specs_make_bodies_the_provider_accepts(provider: str, spec: JobSpec) -> None:
    try:
        serving = validate(spec, [provider], TABLE)
    except UserInputError as error:
        assert_names_a_rule(error)
        assert not can_serve(provider, spec, TABLE)
        return
    assert serving == [provider] and can_serve(provider, spec, TABLE)
    assert body_problems(provider, spec) == []
    assert cost_of(spec) >= 1


@settings(max_examples=300, deadline=None)
@given(spec=specs, order=st.permutations(PROVIDERS), size=st.integers(1, len(PROVIDERS)))
def test_routing_agrees_with_can_serve(spec: JobSpec, order: list[str], size: int) -> None:
    order = order[:size]
    capable = [name for name in order if can_serve(name, spec, TABLE)]
    try:
        serving = serving_providers(spec, order, TABLE)
    except UserInputError as error:
        assert_names_a_rule(error)
        # none can serve, or the prompt as sent to one of them is too long (the longest wins)
        assert not capable or error.rule == "prompt.too_long"
        return
    assert serving == capable


@settings(max_examples=200, deadline=None)
@given(spec=specs)
def test_the_demo_serves_exactly_what_the_model_rules_allow(spec: JobSpec) -> None:
    from hailuo.jobs.capabilities import check_spec

    try:
        check_spec(spec, spellings=(TABLE["demo"].spelling.camera,))
    except UserInputError:
        assert not can_serve("demo", spec, TABLE)
    else:
        assert can_serve("demo", spec, TABLE)
