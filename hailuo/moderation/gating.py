"""The moderation checks a request passes before anything is reserved: where, who, what.

``Gatekeeper.check`` runs the server's channel and role gate
(``hailuo.moderation.screening.check_gate``), then screens the prompt against the
server's blocklist (``hailuo.moderation.screening.screen_prompt``). ``JobDesk`` calls it
in ``precheck`` (the command's first, read-only look) and again inside
``create``'s transaction, so a setting or an entry changed meanwhile (while an
image downloads) still applies. Compiled blocklists are kept per server and
reused while the stored entries are unchanged.

No prompt is matched while the write transaction is open: ``create`` screens
first (``screen``) and, under the lock, only checks that the blocklist it
screened against is still the stored one; if an admin changed it in between,
``BlocklistChanged`` sends ``create`` back to screen again before the lock.

Compiling and matching run on a thread of their own, not on the event loop:
RE2 lets go of the GIL while it matches, so even a server's blocklist at its
caps (``bench/screening.py``) never holds up the gateway heartbeat or the
other servers. One thread: screening is CPU work on a two-core machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

from hailuo.model.moderation import ModerationSettings
from hailuo.moderation.screening import Blocklist, check_gate, screen_prompt
from storage.blocklist import BlocklistEntry
from storage.port import ModerationSettingsStore, Storage, UnitOfWork


class BlocklistChanged(Exception):
    """The server's blocklist changed after the prompt was screened: screen it again."""


@dataclasses.dataclass(frozen=True)
class Screening:
    """A prompt that passed one version of a server's blocklist, screened outside any lock."""

    guild_id: int
    prompt: str
    entries: tuple[BlocklistEntry, ...]


class Gatekeeper:
    def __init__(self, db: Storage, settings: ModerationSettingsStore | None = None) -> None:
        self.settings = settings or db.moderation
        self.entries = db.blocklist
        # Touched only on the screening thread.
        self._compiled: dict[int, tuple[tuple[BlocklistEntry, ...], Blocklist]] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screening")

    async def blocklist(self, guild_id: int) -> Blocklist:
        """The server's blocklist, compiled once per version of its entries."""
        entries = await self.entries.entries(guild_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._compile, guild_id, entries)

    def _compile(self, guild_id: int, entries: tuple[BlocklistEntry, ...]) -> Blocklist:
        cached = self._compiled.get(guild_id)
        if cached is not None and cached[0] == entries:
            return cached[1]
        compiled = Blocklist.compile(entries)
        self._compiled[guild_id] = (entries, compiled)
        return compiled

    async def screen(self, guild_id: int, prompt: str) -> Screening:
        """Screen ``prompt`` against the server's stored blocklist; never call it under a lock."""
        entries = await self.entries.entries(guild_id)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._screen, guild_id, entries, prompt)
        return Screening(guild_id, prompt, entries)

    def _screen(self, guild_id: int, entries: tuple[BlocklistEntry, ...], prompt: str) -> None:
        screen_prompt(prompt, self._compile(guild_id, entries))

    async def check(
        self,
        guild_id: int,
        prompt: str,
        *,
        channel_id: int | None,
        role_ids: Collection[int],
        parent_channel_id: int | None = None,
        tx: UnitOfWork | None = None,
        screened: Screening | None = None,
    ) -> ModerationSettings:
        """Raise the first rule the request breaks; return the server's settings otherwise.

        ``channel_id`` None (a request from no chat channel, like the CLI's)
        skips the channel rule; the role rule and the blocklist still apply.
        Inside a transaction (``tx``) the prompt must come ``screened``: the
        blocklist is only compared with the version screened against, and
        ``BlocklistChanged`` is raised if it differs.
        """
        if tx is not None and (
            screened is None or (screened.guild_id, screened.prompt) != (guild_id, prompt)
        ):
            raise ValueError("screen the prompt before the write transaction")
        settings = await self.settings.get(guild_id, tx)
        gate = settings
        if channel_id is None:
            gate = dataclasses.replace(settings, allowed_channel_ids=frozenset())
        check_gate(
            gate,
            channel_id=channel_id or 0,
            role_ids=role_ids,
            parent_channel_id=parent_channel_id,
        )
        if screened is None:
            await self.screen(guild_id, prompt)
        elif await self.entries.entries(guild_id) != screened.entries:
            raise BlocklistChanged
        return settings
