"""The layer boundaries of the design, enforced mechanically (style.md #17).

- ``hailuo/`` and ``providers/`` never import discord: Discord is one front end of the core;
- only ``storage/`` imports aiosqlite or holds SQL;
- ``providers/`` know nothing of quotas, members or Discord (no storage, no cogs);
- ``cogs/`` hold no SQL and call no provider directly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("package", ["hailuo", "providers", "storage"])
def test_the_core_never_imports_discord(package: str) -> None:
    offenders = [p.name for p in modules(package) if "discord" in map(top, imports_of(p))]
    assert offenders == []


@pytest.mark.parametrize("package", ["hailuo", "providers", "cogs"])
def test_only_storage_talks_to_sqlite(package: str) -> None:
    offenders = [
        p.name for p in modules(package) if {"aiosqlite", "sqlite3"} & set(map(top, imports_of(p)))
    ]
    assert offenders == []


def test_providers_know_nothing_of_storage_or_discord_front_end() -> None:
    offenders = [
        p.name
        for p in modules("providers")
        if {"storage", "cogs", "bot"} & set(map(top, imports_of(p)))
    ]
    assert offenders == []


def test_cogs_call_no_provider_adapter() -> None:
    adapters = {f"providers.{n}" for n in ("minimax", "freepik", "novita", "odkkk", "gptge")}
    offenders = [p.name for p in modules("cogs") if adapters & imports_of(p)]
    assert offenders == []


@pytest.mark.parametrize("package", ["hailuo", "providers", "cogs"])
def test_no_sql_outside_storage(package: str) -> None:
    words = ("SELECT ", "INSERT INTO", "DELETE FROM", "CREATE TABLE")
    offenders = [
        p.name for p in modules(package) if any(w in p.read_text(encoding="utf-8") for w in words)
    ]
    assert offenders == []
