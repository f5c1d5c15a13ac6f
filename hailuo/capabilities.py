"""Which provider can serve which request (stub: the rules-issue fills in the real tables).

``serving_providers`` is the one question the rest of the bot asks: the
command checks it before anything is charged (refusing with the rule when no
configured provider can serve the spec), and the worker's failover only moves
a job to a provider that can serve it.
"""

from __future__ import annotations

from collections.abc import Sequence

from hailuo.errors import UserInputError
from hailuo.spec import JobSpec, check_spec


def can_serve(provider: str, spec: JobSpec) -> bool:
    try:
        check_spec(spec)
    except UserInputError:
        return False
    return True


def serving_providers(spec: JobSpec, order: Sequence[str]) -> list[str]:
    """The providers in ``order`` that can serve ``spec``; raises the broken rule if none can."""
    check_spec(spec)
    serving = [name for name in order if can_serve(name, spec)]
    if not serving:
        raise UserInputError("spec.no_provider", providers=tuple(order))
    return serving
