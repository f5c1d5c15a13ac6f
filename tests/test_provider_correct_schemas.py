"""``pytest -k provider_correct``: the provider request schemas reject unknown fields.

Every schema in ``tests/schemas`` lists every documented field and says
``additionalProperties: false`` on each object, so a misspelt field ("promt",
"first_frame_img") in an adapter's body fails the simulators' checks and this test,
instead of being dropped silently by the provider. Each adapter's own body for each
mode still conforms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hailuo.model.spec import JobSpec, Mode
from tests.sims.base import SCHEMA_DIR, schema_errors
from tests.test_rules_property import body_problems

SCHEMAS = sorted(path.name for path in SCHEMA_DIR.glob("*.json"))


def objects(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every object schema (one with ``properties``) in ``node``."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((where or "<root>", node))
        for key, value in node.items():
            found += objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += objects(value, f"{where}[{index}]")
    return found


@pytest.mark.parametrize("name", SCHEMAS)
def test_provider_correct_schema_closes_every_object(name: str) -> None:
    schema = json.loads(Path(SCHEMA_DIR / name).read_text(encoding="utf-8"))
    found = objects(schema)
    assert found, name
    open_ = [where for where, node in found if node.get("additionalProperties") is not False]
    assert open_ == [], f"{name}: objects accepting unknown fields: {open_}"


def _example(name: str) -> dict[str, Any]:
    """A body that conforms: the schema's required fields with values of their type."""
    schema = json.loads(Path(SCHEMA_DIR / name).read_text(encoding="utf-8"))
    body: dict[str, Any] = {"prompt": "a cat"} if "prompt" in schema["properties"] else {}
    for field in schema.get("required", []):
        spec = schema["properties"][field]
        if "enum" in spec:
            usual = [v for v in spec["enum"] if v in ("MiniMax-Hailuo-02", "768P", "768p", 6)]
            body[field] = (usual or spec["enum"])[0]
        elif spec.get("type") == "integer":
            body[field] = 6
        elif spec.get("type") == "boolean":
            body[field] = True
        else:
            body[field] = "a cat" if field == "prompt" else "https://example.com/a.png"
    return body


@pytest.mark.parametrize("name", SCHEMAS)
@pytest.mark.parametrize("typo", ["promt", "first_frame_img", "Duration"])
def test_provider_correct_schema_rejects_a_misspelt_field(name: str, typo: str) -> None:
    body = _example(name)
    assert schema_errors(name, body) == [], name
    errors = schema_errors(name, {**body, typo: "x"})
    assert errors and any(typo in error for error in errors), errors


@pytest.mark.parametrize("provider", ["minimax", "freepik", "novita", "odkkk", "gptge"])
@pytest.mark.parametrize("mode", list(Mode))
def test_provider_correct_every_adapter_body_conforms(provider: str, mode: Mode) -> None:
    spec = JobSpec(mode=mode, prompt="a cat [Pan left]", resolution="768P", duration=6)
    assert body_problems(provider, spec) == []
