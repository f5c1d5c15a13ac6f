"""What a provider accepts, as records: each ``providers/<name>.py`` fills one, once.

Why the records live here and the data in the providers: a provider's facts (models,
resolutions x durations, modes, image rules, camera spelling, field names, how long its
result lives) are declared once, in its own module, next to the body builder that reads
them; ``providers/registry.py`` collects them. The core's validator
(``hailuo.jobs.capabilities``) reads those records but never imports a provider: it is
handed the registry's table by the wiring (``bot.py``, ``hailuo/cli.py``), and the worker
reads each built adapter's ``capability``. So providers import only this floor, the core
never imports providers, and adding a provider is one file plus one registry line.
No I/O and no catalog here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from hailuo.model.camera import Spelling
from hailuo.model.spec import MODEL_RULES, OPTION_DEFAULTS, Mode

HOUR = 3600.0
ALL_MODES: Final = frozenset(Mode)
IMAGE_ONLY: Final = frozenset({Mode.IMAGE})
BOTH_OPTIONS: Final = frozenset(OPTION_DEFAULTS)
#: The formats the bot can read (an image is re-encoded to JPEG or PNG before it is sent).
READABLE_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP"})


@dataclass(frozen=True, slots=True)
class ImageRules:
    """The numbers of the image rules; messages are rendered from these."""

    formats: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP"})
    #: Exclusive: a file must be *smaller* than this ("< 20MB" read as 20,000,000 bytes).
    max_bytes: int = 20_000_000
    #: Inclusive: the short edge must be at least this (the docs' "> 300 px").
    min_short_edge: int = 301
    #: Exclusive width:height bounds: 2:5 < w:h < 5:2.
    aspect_min: tuple[int, int] = (2, 5)
    aspect_max: tuple[int, int] = (5, 2)
    #: Inclusive: our decompression-bomb guard, well below Pillow's ~89 MP.
    max_pixels: int = 40_000_000

    def __post_init__(self) -> None:
        (a, b), (c, d) = self.aspect_min, self.aspect_max
        if not self.formats or not self.formats <= READABLE_FORMATS:
            raise ValueError(f"formats must be a non-empty subset of {sorted(READABLE_FORMATS)}")
        if min(self.max_bytes, self.min_short_edge, self.max_pixels, a, b, c, d) <= 0:
            raise ValueError("image rule numbers must be positive")
        if a * d >= c * b:
            raise ValueError("aspect_min must be below aspect_max")


DEFAULT_RULES: Final = ImageRules()


@dataclass(frozen=True)
class Offer:
    """One resolution as a provider offers it: its durations, and the modes it serves."""

    durations: frozenset[int]
    modes: frozenset[Mode] = ALL_MODES


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
    #: The list price of one video in micro-dollars (USD 0.28 = 280000), by (model,
    #: resolution, duration), as the provider's public price page states it (dated in
    #: README.md). A combination left out has no stated price: the money view calls it
    #: unknown, and a server's admins set it with ``/hailuo-admin price``.
    prices: Mapping[tuple[str, str, int], int] = field(default_factory=dict)
    #: Its image fields are documented as URLs (a data URL may be refused): with
    #: ``HAILUO_PUBLIC_URL`` set, the bot sends a signed URL of its own server instead
    #: (``hailuo.web.images``).
    images_as_url: bool = False
    #: Status queries a second the provider documents as its limit (providers.md
    #: "Limits"); None when nobody wrote it down (``hailuo.jobs.budget`` then uses its default).
    status_per_second: float | None = None

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


#: Provider name -> what it accepts (``providers.registry.TABLE`` is the one instance).
Table = Mapping[str, ProviderCapability]


def wire_values(*resolutions: str, lower: bool = False) -> Mapping[str, str]:
    """Our resolution -> the provider's word for it (``768P`` -> ``768p`` with ``lower``)."""
    return MappingProxyType({r: r.lower() if lower else r for r in resolutions})
