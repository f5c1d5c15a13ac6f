"""The numbered migration scripts in ``storage/migrations/``, read and split into statements.

Numbered 001, 002, … without gaps: ``PRAGMA user_version`` records the highest one
applied, so a gap would let a later-landed script be skipped for good.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from importlib import resources

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_scripts() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    # ``user_version`` records the highest applied, so a gap would skip a later-landed one.
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 001, 002, … without gaps: {numbers}")
    return found


def statements_of(script: str) -> Iterable[str]:
    """Split a migration into complete statements (triggers hold ``;`` inside ``BEGIN … END``)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines():
        if line.lstrip().startswith("--"):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise RuntimeError(f"a migration ends inside a statement: {pending.strip()[:60]}")
    return statements
