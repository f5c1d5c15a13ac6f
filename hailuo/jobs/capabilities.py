"""Which provider can serve which request: the one validator of the providers' capabilities.

``serving_providers`` is the one question the rest of the bot asks: the
command checks it before anything is charged (refusing with the rule when no
configured provider can serve the spec), and the worker's failover only moves
a job to a provider that can serve it (``can_serve``).

A request must obey two layers of data, read by the same code:

- the model's rules (``hailuo.model.spec.MODEL_RULES``: modes, resolutions, durations),
- each provider's ``CAPABILITY`` (declared once in ``providers/<name>.py``, collected
  in ``providers.registry.TABLE``): which models, modes, resolutions x durations and
  options it exposes, its image rules, and how it spells a request.

This module never imports ``providers/``: every function takes the table as an argument,
handed in by the wiring (``bot.py``, ``hailuo/cli.py``; the cogs pass the registry's).
The records' types live on the model floor (``hailuo.model.capability``).

From the seeds (000 Freepik, 001 MiniMax, 002 odkkk, 003 Novita, 004 gpt.ge) and
providers.md §7: 512P is image-to-video only, on MiniMax, odkkk and gpt.ge, and
never on Freepik or Novita; 1080P is 6 s only everywhere; first+last frame has
no 512P; MiniMax-Hailuo-2.3 / 2.3-Fast are offered by MiniMax and gpt.ge only
(Freepik's and Novita's endpoints are the Hailuo-02 model, odkkk's schema
names only Hailuo-02); Freepik takes no ``fast_pretreatment`` and lists no WebP.

A refusal names the first rule broken by the first provider in the server's
order, listing every configured provider that breaks it and what they offer
instead, so the member learns what to change; its text is the catalog entry
of the rule's code, filled from the table's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from hailuo.i18n.messages import Either
from hailuo.i18n.terms import MODE_LABELS
from hailuo.model.camera import CameraPrompt, Spelling
from hailuo.model.capability import DEFAULT_RULES, ImageRules, ProviderCapability, Table
from hailuo.model.errors import UserInputError
from hailuo.model.spec import (
    MODEL_RULES,
    OPTION_DEFAULTS,
    RESOLUTIONS,
    JobSpec,
    Mode,
    check_prompt,
    check_prompt_length,
    models_for,
)

__all__ = [
    "RULES",
    "CapabilityRule",
    "ImagePlan",
    "can_serve",
    "data_url_budget",
    "image_plan",
    "offered",
    "option_values",
    "refusal_for",
    "serving_providers",
    "validate",
]

_DATA_URL_PREFIX = "data:image/jpeg;base64,"


def check_spec(spec: JobSpec, *, spellings: Collection[Spelling] | None = None) -> CameraPrompt:
    """Every model rule that needs no download and no provider, raising the first one broken.

    ``spellings`` is passed on to :func:`check_prompt`; returns the parsed prompt.
    """
    parsed = check_prompt(spec.prompt, required=spec.mode is Mode.TEXT, spellings=spellings)
    rule = MODEL_RULES.get(spec.model)
    if rule is None:
        raise UserInputError("spec.model", model=spec.model, allowed=tuple(MODEL_RULES))
    if spec.mode not in rule.modes:
        raise UserInputError(
            "spec.model_mode",
            model=rule.name,
            mode=MODE_LABELS[spec.mode],
            allowed=tuple(MODE_LABELS[mode] for mode in Mode if mode in rule.modes),
            models=tuple(models_for(spec.mode)),
        )
    allowed_res = rule.resolutions_for(spec.mode)
    if spec.resolution not in allowed_res:
        raise UserInputError(
            "spec.resolution",
            model=rule.name,
            mode=MODE_LABELS[spec.mode],
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
    return parsed


# --- the rules --------------------------------------------------------------


def _either(items: Iterable[object]) -> str:
    """``A``, ``A or B``, ``A, B or C`` (a member's choice among them), in the reader's words."""
    return Either(items)


def _providers(group: Sequence[ProviderCapability]) -> str:
    return _either(cap.label for cap in group)


def _unsupported_option(cap: ProviderCapability, spec: JobSpec) -> str | None:
    for option, value in spec.options().items():
        if value != OPTION_DEFAULTS[option] and option not in cap.options:
            return option
    return None


def _model_params(spec: JobSpec, group: Sequence[ProviderCapability]) -> dict[str, object]:
    offered = {m for cap in group for m in cap.models if cap.offers(m, spec.mode)}
    return {
        "model": spec.model,
        "providers": _providers(group),
        "allowed": _either(m for m in MODEL_RULES if m in offered),
    }


def _mode_params(spec: JobSpec, group: Sequence[ProviderCapability]) -> dict[str, object]:
    modes = {mode for cap in group for mode in cap.modes}
    return {
        "mode": MODE_LABELS[spec.mode],
        "providers": _providers(group),
        "allowed": _either(MODE_LABELS[mode] for mode in Mode if mode in modes),
    }


def _resolution_params(spec: JobSpec, group: Sequence[ProviderCapability]) -> dict[str, object]:
    offered = {r for cap in group for r in cap.offers(spec.model, spec.mode)}
    return {
        "resolution": spec.resolution,
        "mode": MODE_LABELS[spec.mode],
        "providers": _providers(group),
        "allowed": _either(r for r in RESOLUTIONS if r in offered),
    }


def _duration_params(spec: JobSpec, group: Sequence[ProviderCapability]) -> dict[str, object]:
    durations: set[int] = set()
    for cap in group:
        durations |= cap.offers(spec.model, spec.mode).get(spec.resolution, frozenset())
    return {
        "resolution": spec.resolution,
        "duration": spec.duration,
        "providers": _providers(group),
        "allowed": _either(sorted(durations)),
    }


def _option_params(spec: JobSpec, group: Sequence[ProviderCapability]) -> dict[str, object]:
    option = _unsupported_option(group[0], spec) or ""
    return {
        "option": option,
        "default": str(OPTION_DEFAULTS.get(option, "")),
        "providers": _providers(group),
    }


@dataclass(frozen=True)
class CapabilityRule:
    """One dimension of the table: when a provider breaks it, and the message's numbers."""

    code: str
    broken: Callable[[ProviderCapability, JobSpec], bool]
    params: Callable[[JobSpec, Sequence[ProviderCapability]], dict[str, object]]


#: Checked in this order; the first broken one is the provider's reason.
RULES: tuple[CapabilityRule, ...] = (
    CapabilityRule(
        "capability.model", lambda cap, spec: spec.model not in cap.models, _model_params
    ),
    CapabilityRule("capability.mode", lambda cap, spec: spec.mode not in cap.modes, _mode_params),
    CapabilityRule(
        "capability.resolution",
        lambda cap, spec: spec.resolution not in cap.offers(spec.model, spec.mode),
        _resolution_params,
    ),
    CapabilityRule(
        "capability.duration",
        lambda cap, spec: (
            spec.duration not in cap.offers(spec.model, spec.mode).get(spec.resolution, ())
        ),
        _duration_params,
    ),
    CapabilityRule(
        "capability.option",
        lambda cap, spec: _unsupported_option(cap, spec) is not None,
        _option_params,
    ),
)


def _caps(order: Sequence[str], table: Table) -> list[ProviderCapability]:
    """The known providers of ``order``, in order."""
    return [table[name] for name in order if name in table]


def refusal_for(cap: ProviderCapability, spec: JobSpec) -> CapabilityRule | None:
    """The first rule of ``RULES`` that ``cap`` breaks for ``spec`` (None: it can serve)."""
    return next((rule for rule in RULES if rule.broken(cap, spec)), None)


def validate(spec: JobSpec, order: Sequence[str], table: Table) -> list[str]:
    """The providers of ``order`` that can serve ``spec``, or the rule that stops them all.

    Model rules and camera syntax come first (``check_spec``), then each provider's
    table; the prompt's length is checked last, as sent to the providers that serve
    it (camera commands in each one's spelling; the longest wins).
    """
    parsed = check_spec(spec, spellings=())
    caps = _caps(order, table)
    if not caps:
        raise UserInputError("job.no_provider")
    reasons = [(cap, refusal_for(cap, spec)) for cap in caps]
    serving = [cap for cap, reason in reasons if reason is None]
    if not serving:
        first = reasons[0][1]
        assert first is not None
        group = [cap for cap in caps if first.broken(cap, spec)]
        raise UserInputError(first.code, **first.params(spec, group))
    check_prompt_length(parsed, {cap.spelling.camera for cap in serving})
    return [cap.name for cap in serving]


def can_serve(provider: str, spec: JobSpec, table: Table) -> bool:
    """Whether ``provider`` can take ``spec`` (the worker's failover asks this)."""
    cap = table.get(provider)
    if cap is None:
        return False
    try:
        check_spec(spec, spellings=(cap.spelling.camera,))
    except UserInputError:
        return False
    return refusal_for(cap, spec) is None


def serving_providers(spec: JobSpec, order: Sequence[str], table: Table) -> list[str]:
    """The providers in ``order`` that can serve ``spec``; raises the broken rule if none can."""
    return validate(spec, order, table)


def offered(
    order: Sequence[str], table: Table
) -> dict[Mode, tuple[list[str], dict[str, frozenset[int]]]]:
    """What ``order`` offers together, per mode: the models, and resolution -> durations."""
    caps = _caps(order, table)
    out: dict[Mode, tuple[list[str], dict[str, frozenset[int]]]] = {}
    for mode in Mode:
        models: list[str] = []
        resolutions: dict[str, frozenset[int]] = {}
        for model in MODEL_RULES:
            for cap in caps:
                for resolution, durations in cap.offers(model, mode).items():
                    if model not in models:
                        models.append(model)
                    resolutions[resolution] = resolutions.get(resolution, frozenset()) | durations
        if models:
            ordered = {r: resolutions[r] for r in RESOLUTIONS if r in resolutions}
            out[mode] = (models, ordered)
    return out


def option_values(
    order: Sequence[str],
    table: Table,
    modes: Collection[Mode],
    *,
    duration: int | None = None,
    model: str | None = None,
) -> tuple[list[str], list[str]]:
    """The models and resolutions a member may choose here: ``(models, resolutions)``.

    What some configured provider in ``order`` serves for one of ``modes``, at
    ``duration`` when chosen already; the resolutions for ``model`` when chosen
    already (an unknown model narrows nothing). The slash commands' autocomplete
    lists these, so a member picks from what this server can make, not from every
    value any provider knows, and learns nothing only after choosing.
    """
    caps = _caps(order, table)
    narrow = model if model in MODEL_RULES else None
    models: list[str] = []
    resolutions: set[str] = set()
    for name in MODEL_RULES:
        for cap in caps:
            for mode in modes:
                for resolution, durations in cap.offers(name, mode).items():
                    if duration is not None and duration not in durations:
                        continue
                    if name not in models:
                        models.append(name)
                    if narrow is None or name == narrow:
                        resolutions.add(resolution)
    return models, [r for r in RESOLUTIONS if r in resolutions]


# --- images -----------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """How an attachment is checked and prepared for the providers that may receive it.

    ``check`` is what the member's file must satisfy: any format the bot can read
    (it is re-encoded anyway), and every provider's geometry and size limits.
    ``send_formats`` are the JPEG/PNG formats every one of them lists (Freepik: no
    WebP), and ``max_bytes`` (exclusive) keeps the data URL of the prepared bytes
    under each provider's size limit, since images travel as base64 data URLs
    (the decision in ``hailuo.media.images``), which are 4/3 the size of the bytes.
    """

    check: ImageRules
    send_formats: frozenset[str]
    max_bytes: int


def data_url_budget(limit: int) -> int:
    """The exclusive byte limit whose base64 data URL stays shorter than ``limit`` characters."""
    quads = (limit - 1 - len(_DATA_URL_PREFIX)) // 4
    return 3 * quads + 1


def _ratio_key(ratio: tuple[int, int]) -> float:
    return ratio[0] / ratio[1]


def image_plan(order: Sequence[str], table: Table) -> ImagePlan:
    """The strictest image rules of the providers in ``order`` (every known one if none)."""
    caps = _caps(order, table) or list(table.values())
    rules = [cap.images for cap in caps]
    send = frozenset({"JPEG", "PNG"}).intersection(*(r.formats for r in rules))
    if not send:
        raise ValueError("no image format every provider takes: prepare makes JPEG or PNG only")
    limit = min(r.max_bytes for r in rules)
    check = ImageRules(
        formats=DEFAULT_RULES.formats,
        max_bytes=limit,
        min_short_edge=max(r.min_short_edge for r in rules),
        aspect_min=max((r.aspect_min for r in rules), key=_ratio_key),
        aspect_max=min((r.aspect_max for r in rules), key=_ratio_key),
        max_pixels=min(r.max_pixels for r in rules),
    )
    return ImagePlan(check=check, send_formats=send, max_bytes=data_url_budget(limit))
