"""Which provider can serve which request: one capability table per provider, one validator.

``serving_providers`` is the one question the rest of the bot asks: the
command checks it before anything is charged (refusing with the rule when no
configured provider can serve the spec), and the worker's failover only moves
a job to a provider that can serve it (``can_serve``).

A request must obey two layers of data, read by the same code:

- the model's rules (``hailuo.spec.MODEL_RULES``: modes, resolutions, durations),
- the provider's table below (``TABLE``): which models, modes, resolutions x
  durations and options it exposes, its image rules, and how it spells a
  request (``SPELLINGS``, for adapters).

From the seeds (000 Freepik, 001 MiniMax, 002 odkkk, 003 Novita, 004 gpt.ge) and
providers.md §7: 512P is image-to-video only, on MiniMax, odkkk and gpt.ge, and
never on Freepik or Novita; 1080P is 6 s only everywhere; first+last frame has
no 512P; MiniMax-Hailuo-2.3 / 2.3-Fast are offered by MiniMax and gpt.ge only
(Freepik's and Novita's endpoints are the Hailuo-02 model, odkkk's schema
names only Hailuo-02); Freepik takes no ``fast_pretreatment`` and lists no WebP.

A refusal names the first rule broken by the first provider in the server's
order, listing every configured provider that breaks it and what they offer
instead, so the member learns what to change; its text is the catalog entry
of the rule's code, filled from this table's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from hailuo.camera import Spelling
from hailuo.errors import UserInputError
from hailuo.images import DEFAULT_RULES, FREEPIK_RULES, ImageRules
from hailuo.messages import Either
from hailuo.spec import (
    MODE_LABELS,
    MODEL_RULES,
    OPTION_DEFAULTS,
    RESOLUTIONS,
    JobSpec,
    Mode,
    check_prompt_length,
    check_spec,
)

__all__ = [
    "RULES",
    "SPELLINGS",
    "TABLE",
    "CapabilityRule",
    "ImagePlan",
    "Offer",
    "ProviderCapability",
    "WireNames",
    "can_serve",
    "data_url_budget",
    "image_plan",
    "offered",
    "refusal_for",
    "serving_providers",
    "validate",
]

HOUR = 3600.0
_ALL_MODES = frozenset(Mode)
_IMAGE_ONLY = frozenset({Mode.IMAGE})
_BOTH_OPTIONS = frozenset(OPTION_DEFAULTS)
#: The longest data URL prefix an image is sent with (``prepare`` makes JPEG or PNG).
_DATA_URL_PREFIX = "data:image/jpeg;base64,"


@dataclass(frozen=True)
class Offer:
    """One resolution as a provider offers it: its durations, and the modes it serves."""

    durations: frozenset[int]
    modes: frozenset[Mode] = _ALL_MODES


@dataclass(frozen=True)
class WireNames:
    """How one provider spells a request; adapters read this, nothing here builds HTTP.

    A field is a JSON path: dots for nesting (``model_params.prompt_optimizer``),
    ``[i]`` for a list position (``image_urls[0]``). ``None`` means the provider has
    no such field: Freepik's resolution is the endpoint tier (``resolution_in_path``),
    Freepik's and Novita's model is the endpoint itself.
    """

    camera: Spelling
    model: str | None
    resolution: str | None
    #: Our resolution -> the provider's word for it (``768P`` -> ``768p``).
    resolution_values: Mapping[str, str]
    duration: str
    prompt: str
    first_frame: str
    last_frame: str
    prompt_optimizer: str
    fast_pretreatment: str | None
    callback: str | None
    #: ``data_url`` (``data:image/png;base64,...``) or ``base64`` (the payload only).
    image_encoding: str
    #: Fields the provider requires in every body; ``prompt`` here means a neutral
    #: prompt is sent for an image-to-video request without one.
    required: frozenset[str]
    resolution_in_path: bool = False

    @property
    def prompt_required(self) -> bool:
        return "prompt" in self.required


@dataclass(frozen=True)
class ProviderCapability:
    """What one provider accepts; combined with the model rules by :meth:`offers`."""

    name: str
    label: str  # how members read the provider's name
    models: frozenset[str]
    modes: frozenset[Mode]
    resolutions: Mapping[str, Offer]
    #: The switches of ``OPTION_DEFAULTS`` this provider takes; one it lacks can
    #: only be left at its default.
    options: frozenset[str]
    images: ImageRules
    spelling: WireNames
    #: How long the finished file can be fetched, in seconds from the task's success
    #: (providers.md §7, "URL TTL"): a delivery is retried until then, not for a count.
    result_lifetime: float = HOUR
    #: ``result_url`` hands out a new URL each time (a re-query, files/retrieve): an
    #: expired URL (403/404/410) is then asked again; otherwise it ends the delivery.
    fresh_url: bool = True

    def offers(self, model: str, mode: Mode) -> dict[str, frozenset[int]]:
        """Resolution -> durations this provider serves for ``model`` x ``mode``."""
        rule = MODEL_RULES.get(model)
        if rule is None or model not in self.models or mode not in self.modes:
            return {}
        out: dict[str, frozenset[int]] = {}
        for resolution in rule.resolutions_for(mode):
            offer = self.resolutions.get(resolution)
            if offer is None or mode not in offer.modes:
                continue
            durations = offer.durations & rule.durations[resolution]
            if durations:
                out[resolution] = durations
        return out


def _values(*resolutions: str, lower: bool = False) -> Mapping[str, str]:
    return MappingProxyType({r: r.lower() if lower else r for r in resolutions})


_MINIMAX_BODY = WireNames(
    camera=Spelling.ENGLISH,
    model="model",
    resolution="resolution",
    resolution_values=_values(*RESOLUTIONS),
    duration="duration",
    prompt="prompt",
    first_frame="first_frame_image",
    last_frame="last_frame_image",
    prompt_optimizer="prompt_optimizer",
    fast_pretreatment="fast_pretreatment",
    callback="callback_url",
    image_encoding="data_url",
    required=frozenset({"model"}),
)

#: Provider name -> how it spells a request (seeds 000-004; providers.md §5b for camera).
SPELLINGS: Mapping[str, WireNames] = MappingProxyType(
    {
        "minimax": _MINIMAX_BODY,
        "freepik": replace(
            _MINIMAX_BODY,
            model=None,  # the endpoint is the model: /v1/ai/image-to-video/minimax-hailuo-02-{tier}
            resolution=None,
            resolution_values=_values("768P", "1080P", lower=True),
            resolution_in_path=True,
            fast_pretreatment=None,
            callback="webhook_url",
            image_encoding="base64",
            required=frozenset({"prompt"}),
        ),
        "novita": replace(
            _MINIMAX_BODY,
            model=None,  # the endpoint is the model: /v3/async/minimax-hailuo-02
            resolution_values=_values("768P", "1080P"),
            first_frame="image",
            last_frame="end_image",
            prompt_optimizer="enable_prompt_expansion",
            callback=None,
            required=frozenset({"prompt"}),
        ),
        "odkkk": replace(
            _MINIMAX_BODY,
            resolution="quality",
            resolution_values=_values(*RESOLUTIONS, lower=True),
            first_frame="image_urls[0]",
            last_frame="image_urls[1]",
            prompt_optimizer="model_params.prompt_optimizer",
            fast_pretreatment="model_params.fast_pretreatment",
            callback=None,
        ),
        "gptge": replace(
            _MINIMAX_BODY,
            camera=Spelling.CHINESE,
            required=frozenset({"model", "duration", "resolution"}),
        ),
        "demo": _MINIMAX_BODY,  # renders locally; no HTTP body at all
    }
)

_MINIMAX_RESOLUTIONS: Mapping[str, Offer] = MappingProxyType(
    {
        "512P": Offer(frozenset({6, 10}), _IMAGE_ONLY),
        "768P": Offer(frozenset({6, 10})),
        "1080P": Offer(frozenset({6})),
    }
)
_NO_512P: Mapping[str, Offer] = MappingProxyType(
    {"768P": Offer(frozenset({6, 10})), "1080P": Offer(frozenset({6}))}
)
_HAILUO_02_ONLY = frozenset({"MiniMax-Hailuo-02"})


def _provider(
    name: str,
    label: str,
    models: frozenset[str],
    resolutions: Mapping[str, Offer],
    *,
    options: frozenset[str] = _BOTH_OPTIONS,
    images: ImageRules = DEFAULT_RULES,
    result_lifetime: float = HOUR,
    fresh_url: bool = True,
) -> ProviderCapability:
    """A row of ``TABLE``: every provider serves the three modes (providers.md §7)."""
    return ProviderCapability(
        name,
        label,
        models,
        _ALL_MODES,
        resolutions,
        options,
        images,
        SPELLINGS[name],
        result_lifetime,
        fresh_url,
    )


_EVERY_MODEL = frozenset(MODEL_RULES)
_ANY = MappingProxyType({r: Offer(frozenset({6, 10})) for r in RESOLUTIONS})

#: Provider name -> what it accepts. "demo" accepts everything the model rules allow.
TABLE: Mapping[str, ProviderCapability] = MappingProxyType(
    {
        row.name: row
        for row in (
            # Seed 001; files/retrieve hands out a fresh URL, the file lives about 9 h.
            _provider(
                "minimax",
                "MiniMax",
                _EVERY_MODEL,
                _MINIMAX_RESOLUTIONS,
                result_lifetime=9 * HOUR,
            ),
            # Seed 000 (tiers 768p/1080p); last_frame_image is on the current 768p page only.
            # The file's lifetime is not documented: the shortest known one (1 h), with a
            # fresh URL from a re-query at every try.
            _provider(
                "freepik",
                "Freepik",
                _HAILUO_02_ONLY,
                _NO_512P,
                options=frozenset({"prompt_optimizer"}),
                images=FREEPIK_RULES,
                result_lifetime=HOUR,
            ),
            # Seed 003: video_url_ttl 3600; a re-query may or may not renew the URL.
            _provider("novita", "Novita", _HAILUO_02_ONLY, _NO_512P, result_lifetime=HOUR),
            # Seed 002: results[0] is the file itself, "valid for 24 hours"; never renewed.
            _provider(
                "odkkk",
                "odkkk",
                _HAILUO_02_ONLY,
                _MINIMAX_RESOLUTIONS,
                result_lifetime=24 * HOUR,
                fresh_url=False,
            ),
            # Seed 004: MiniMax's files/retrieve passed through, so MiniMax's 9 h (inferred).
            _provider(
                "gptge", "gpt.ge", _EVERY_MODEL, _MINIMAX_RESOLUTIONS, result_lifetime=9 * HOUR
            ),
            # Our own server renders and keeps the file.
            _provider("demo", "demo", _EVERY_MODEL, _ANY, result_lifetime=24 * HOUR),
        )
    }
)

Table = Mapping[str, ProviderCapability]


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


def _caps(order: Sequence[str], table: Table | None) -> list[ProviderCapability]:
    """The known providers of ``order``, in order (the table is looked up at call time)."""
    current = TABLE if table is None else table
    return [current[name] for name in order if name in current]


def refusal_for(cap: ProviderCapability, spec: JobSpec) -> CapabilityRule | None:
    """The first rule of ``RULES`` that ``cap`` breaks for ``spec`` (None: it can serve)."""
    return next((rule for rule in RULES if rule.broken(cap, spec)), None)


def validate(spec: JobSpec, order: Sequence[str], table: Table | None = None) -> list[str]:
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


def can_serve(provider: str, spec: JobSpec) -> bool:
    """Whether ``provider`` can take ``spec`` (the worker's failover asks this)."""
    cap = TABLE.get(provider)
    if cap is None:
        return False
    try:
        check_spec(spec, spellings=(cap.spelling.camera,))
    except UserInputError:
        return False
    return refusal_for(cap, spec) is None


def serving_providers(spec: JobSpec, order: Sequence[str]) -> list[str]:
    """The providers in ``order`` that can serve ``spec``; raises the broken rule if none can."""
    return validate(spec, order)


def offered(
    order: Sequence[str], table: Table | None = None
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


# --- images -----------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """How an attachment is checked and prepared for the providers that may receive it.

    ``check`` is what the member's file must satisfy: any format the bot can read
    (it is re-encoded anyway), and every provider's geometry and size limits.
    ``send_formats`` are the JPEG/PNG formats every one of them lists (Freepik: no
    WebP), and ``max_bytes`` (exclusive) keeps the data URL of the prepared bytes
    under each provider's size limit, since images travel as base64 data URLs
    (the decision in ``hailuo.images``), which are 4/3 the size of the bytes.
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


def image_plan(order: Sequence[str], table: Table | None = None) -> ImagePlan:
    """The strictest image rules of the providers in ``order`` (every known one if none)."""
    caps = _caps(order, table) or list((TABLE if table is None else table).values())
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
