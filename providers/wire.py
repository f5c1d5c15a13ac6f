"""One body builder for every provider, reading the field names of its ``CAPABILITY``.

A provider's ``WireNames`` (``hailuo.model.capability``) says what each field is called
(``model_params.prompt_optimizer``, ``image_urls[0]``), whether it exists at all, how an
image travels (a data URL or bare base64) and which fields are required; this module
writes the request from them, so the names live once, in the provider's capability.
Anything a provider does beyond its names (Freepik's tier in the URL) stays in its module.
"""

from __future__ import annotations

import re
from typing import Any

from hailuo.model.camera import parse_prompt
from hailuo.model.capability import WireNames
from hailuo.model.provider import PreparedInput
from hailuo.model.spec import Mode

_INDEX = re.compile(r"^(\w+)\[(\d+)\]$")


def put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in ``body``: dots nest objects, ``name[i]`` is position ``i`` of a list.

    A list position is appended in order (position ``i`` needs the ``i`` before it).
    """
    *parents, leaf = path.split(".")
    holder = body
    for name in parents:
        holder = holder.setdefault(name, {})
    indexed = _INDEX.match(leaf)
    if indexed is None:
        holder[leaf] = value
        return
    items = holder.setdefault(indexed.group(1), [])
    position = int(indexed.group(2))
    if position != len(items):
        raise ValueError(f"{path}: position {position} after {len(items)} items")
    items.append(value)


def bare_base64(image: str) -> str:
    """A data URL's payload only (``data:image/png;base64,XXXX`` -> ``XXXX``)."""
    if image.startswith("data:") and ";base64," in image:
        return image.split(",", 1)[1]
    return image


def request_body(
    job: PreparedInput, wire: WireNames, *, neutral_prompt: str = ""
) -> dict[str, Any]:
    """The generation request of ``job`` in the names of ``wire``.

    ``neutral_prompt`` is sent when the provider requires a prompt and the member gave
    none (image to video without words).
    """
    spec = job.spec
    body: dict[str, Any] = {}
    if wire.model is not None:
        put(body, wire.model, spec.model)
    put(body, wire.duration, spec.duration)
    if wire.resolution is not None:
        put(body, wire.resolution, wire.resolution_values.get(spec.resolution, spec.resolution))
    put(body, wire.prompt_optimizer, spec.prompt_optimizer)
    if wire.fast_pretreatment is not None:
        put(body, wire.fast_pretreatment, spec.fast_pretreatment)
    prompt = parse_prompt(spec.prompt).render(wire.camera) if spec.prompt else ""
    if wire.prompt_required:
        put(body, wire.prompt, prompt if prompt.strip() else neutral_prompt)
    elif spec.prompt:
        put(body, wire.prompt, prompt)

    def image(value: str) -> str:
        return bare_base64(value) if wire.image_encoding == "base64" else value

    if spec.mode in (Mode.IMAGE, Mode.FIRST_LAST) and job.first_frame:
        put(body, wire.first_frame, image(job.first_frame))
        if spec.mode is Mode.FIRST_LAST and job.last_frame:
            put(body, wire.last_frame, image(job.last_frame))
    if wire.callback is not None and job.callback_url:
        put(body, wire.callback, job.callback_url)
    return body
