"""The autocomplete of ``/hailuo text`` and ``/hailuo animate``: choices that fit the server.

The ``model`` and ``resolution`` options list what the configured providers can
serve (``providers.registry.TABLE`` read through ``hailuo.jobs.capabilities``) for
the mode, duration and model the member has chosen so far, instead of every value
any provider knows: a member picks from what this server can make.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import discord
from discord import app_commands

from hailuo.jobs import capabilities
from hailuo.model.spec import Mode
from providers.registry import TABLE


def choices(values: Iterable[str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=value, value=value) for value in values]


#: Discord shows at most 25 autocomplete suggestions.
_MAX_SUGGESTIONS = 25


def suggestions(
    interaction: discord.Interaction,
    current: str,
    option: str,
    order: Sequence[str],
    *modes: Mode,
) -> list[app_commands.Choice[str]]:
    """What ``option`` (``model`` or ``resolution``) may be here, for the autocomplete.

    Read from the configured providers' capabilities through the core
    (``capabilities.option_values``) for the mode and the duration (and model)
    the member has chosen so far, so the list fits this server.
    """
    namespace = interaction.namespace
    if len(modes) > 1:  # /hailuo animate: a last frame makes it first+last frame
        modes = (Mode.FIRST_LAST,) if getattr(namespace, "last_frame", None) else (Mode.IMAGE,)
    duration = getattr(namespace, "duration", None)
    model = getattr(namespace, "model", None)
    models, resolutions = capabilities.option_values(
        order,
        TABLE,
        modes,
        duration=duration if isinstance(duration, int) else None,
        model=model if isinstance(model, str) else None,
    )
    values = models if option == "model" else resolutions
    typed = current.strip().casefold()
    return choices([v for v in values if typed in v.casefold()][:_MAX_SUGGESTIONS])
