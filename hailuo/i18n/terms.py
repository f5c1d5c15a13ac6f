"""Catalog words for the model floor's values (the floor itself imports no catalog)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hailuo.i18n.messages import Term
from hailuo.model.spec import Mode

#: How a mode is named in a member's message: ``mode.<value>`` in the catalog, rendered in
#: the language of the text it fills (English elsewhere: "text-to-video").
MODE_LABELS: Mapping[Mode, Term] = MappingProxyType(
    {mode: Term(f"mode.{mode.value}") for mode in Mode}
)
