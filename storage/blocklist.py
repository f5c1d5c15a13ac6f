"""The server's prompt blocklist: words, phrases and regex patterns, each with a label.

Only storage: ``hailuo.moderation.screening.validate_entry`` checks an entry before
``add``, and ``hailuo.moderation.screening.Blocklist`` compiles what ``entries`` returns.
The audit row of a change (``setting_changed``, naming the entry's id, kind and
label, not its text) is the caller's: ``hailuo.moderation.screening.admin`` writes it in
the same unit of work.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from storage.engine import Engine, reading, within
from storage.port import UnitOfWork


class BlocklistKind(enum.StrEnum):
    WORD = "word"
    PHRASE = "phrase"
    REGEX = "regex"


@dataclass(frozen=True)
class BlocklistEntry:
    id: int
    guild_id: int
    kind: BlocklistKind
    text: str
    label: str  # shown to the member instead of the entry itself; '' = the default label
    added_by: int | None
    created_at: float


INSERT_BLOCKLIST = """
INSERT INTO blocklist (guild_id, kind, text, label, added_by, created_at)
VALUES (:guild, :kind, :text, :label, :by, :now)
"""
SELECT_BLOCKLIST = "SELECT * FROM blocklist WHERE guild_id = :guild ORDER BY id"
SELECT_BLOCKLIST_ENTRY = "SELECT * FROM blocklist WHERE guild_id = :guild AND id = :id"
DELETE_BLOCKLIST_ENTRY = "DELETE FROM blocklist WHERE guild_id = :guild AND id = :id"


class BlocklistRepository:
    """Stored entries only: ``moderation.screening.validate_entry`` checks one before ``add``."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    async def entries(
        self, guild_id: int, tx: UnitOfWork | None = None
    ) -> tuple[BlocklistEntry, ...]:
        """The server's entries, committed or as ``tx`` (a creating transaction) sees them."""
        rows = await reading(self.db, tx).fetch_all(SELECT_BLOCKLIST, {"guild": guild_id})
        return tuple(_blocklist_entry(r) for r in rows)

    async def add(
        self,
        guild_id: int,
        kind: BlocklistKind,
        text: str,
        *,
        label: str = "",
        added_by: int | None,
        now: float,
        tx: UnitOfWork | None = None,
    ) -> BlocklistEntry:
        async with within(self.db, tx) as own:
            entry_id = await own.insert(
                INSERT_BLOCKLIST,
                {
                    "guild": guild_id,
                    "kind": kind.value,
                    "text": text,
                    "label": label,
                    "by": added_by,
                    "now": now,
                },
            )
            row = await own.fetch_one(SELECT_BLOCKLIST_ENTRY, {"guild": guild_id, "id": entry_id})
        assert row is not None
        return _blocklist_entry(row)

    async def remove(
        self, guild_id: int, entry_id: int, *, tx: UnitOfWork | None = None
    ) -> BlocklistEntry | None:
        """Delete one entry; ``None`` when the server has no such entry."""
        async with within(self.db, tx) as own:
            row = await own.fetch_one(SELECT_BLOCKLIST_ENTRY, {"guild": guild_id, "id": entry_id})
            if row is None:
                return None
            entry = _blocklist_entry(row)
            await own.execute(DELETE_BLOCKLIST_ENTRY, {"guild": guild_id, "id": entry_id})
        return entry


def _blocklist_entry(row: Any) -> BlocklistEntry:
    data = dict(row)
    data["kind"] = BlocklistKind(data["kind"])
    return BlocklistEntry(**data)
