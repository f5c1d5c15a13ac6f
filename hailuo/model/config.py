"""Configuration records every layer reads: a secret that hides itself, one provider's settings.

``hailuo.settings`` reads the environment and builds these; providers and the core only
read them, so they live on the ground floor (no I/O, no environment access here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    api_key: Secret | None
    base_url: str  # for ``demo``: the bot's own HTTP server, which serves the rendered files
    submits_per_minute: int | None
    #: ``<PROVIDER>_STATUS_PER_SECOND``: the owner's status-query budget (``hailuo.jobs.budget``).
    status_per_second: float | None = None
    directory: Path | None = None  # ``demo`` only: where the rendered files are kept
    key_header: str | None = None  # Freepik only: the header carrying the key (Magnific's host)
