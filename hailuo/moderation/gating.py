"""The moderation checks a request passes before anything is reserved: where, who, what.

The server's channel and role gate (``hailuo.moderation.screening.check_gate``) and
its blocklist (``hailuo.moderation.screening.screen_prompt``) run once per request, in
the command's first look (``first_look``, for ``JobDesk.first_look`` and ``precheck``).
``Gatekeeper.check``, inside ``create``'s transaction, settles that look on the stored
values: the gate runs again only if the settings changed meanwhile (while an image
downloads), and a changed blocklist means screening again. Compiled blocklists are kept
per server and reused while the stored entries are unchanged.

No prompt is matched while the write transaction is open: ``create`` screens
first (``screen``) and, under the lock, only checks that the blocklist it
screened against is still the stored one; if an admin changed it in between,
``BlocklistChanged`` sends ``create`` back to screen again before the lock.

A command's first look (``first_look``) reads nothing from storage while this process
knows the server's settings and blocklist: both are kept per server, dropped when an
admin changes them here (``forget``, called by ``ModerationAdmin`` and on every change
seen under ``check``'s transaction), and a refusal is only ever given after the stored
values confirmed it. What passed on known values is settled by ``check`` under the
create's transaction, which reads the stored ones: a change made elsewhere still applies.

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
    """A prompt that passed one version of a server's blocklist, screened outside any lock.

    ``settings``: the settings the channel and role gate passed on (``first_look``), so
    ``check`` does not run the gate again while the stored settings are the same."""

    guild_id: int
    prompt: str
    entries: tuple[BlocklistEntry, ...]
    settings: ModerationSettings | None = None
    gate: tuple[int | None, frozenset[int], int | None] | None = None  # channel, roles, parent

    def covers(
        self,
        guild_id: int,
        prompt: str,
        channel_id: int | None,
        role_ids: Collection[int],
        parent_channel_id: int | None,
    ) -> bool:
        """Whether this screening (a ``first_look``) was of this very request: the same
        server and prompt, from the same channel with the same roles."""
        return (self.guild_id, self.prompt) == (guild_id, prompt) and self.gate == (
            channel_id,
            frozenset(role_ids),
            parent_channel_id,
        )


class Gatekeeper:
    def __init__(self, db: Storage, settings: ModerationSettingsStore | None = None) -> None:
        self.settings = settings or db.moderation
        self.entries = db.blocklist
        # Touched only on the screening thread.
        self._compiled: dict[int, tuple[tuple[BlocklistEntry, ...], Blocklist]] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screening")
        #: What this process knows of each server: its settings and its blocklist's entries.
        self._known: dict[int, tuple[ModerationSettings, tuple[BlocklistEntry, ...]]] = {}
        #: The same, with the moderation version they were read at inside a transaction.
        self._stamped: dict[int, tuple[int, ModerationSettings, tuple[BlocklistEntry, ...]]] = {}
        self._generation = 0  # bumped by ``forget``: a read begun before it is not kept
        self._reading: dict[
            int, asyncio.Future[tuple[ModerationSettings, tuple[BlocklistEntry, ...]]]
        ] = {}
        self.gate_runs = 0  # how often the channel and role gate ran (tests count it)

    def forget(self, guild_id: int) -> None:
        """The server's settings or blocklist changed: read them again next time."""
        self._known.pop(guild_id, None)
        self._stamped.pop(guild_id, None)
        self._reading.pop(guild_id, None)  # a read under way may predate the change
        self._generation += 1

    async def _stored(self, guild_id: int) -> tuple[ModerationSettings, tuple[BlocklistEntry, ...]]:
        """The stored settings and entries, read once for every command that asks meanwhile
        (a burst on a server not known yet reads them once, not once per command)."""
        reading = self._reading.get(guild_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(guild_id))
            self._reading[guild_id] = reading
            reading.add_done_callback(
                lambda done: (
                    self._reading.pop(guild_id, None)
                    if self._reading.get(guild_id) is done
                    else None
                )
            )
        return await asyncio.shield(reading)

    async def _read(self, guild_id: int) -> tuple[ModerationSettings, tuple[BlocklistEntry, ...]]:
        """Read them; kept unless a change was seen while reading."""
        generation = self._generation
        settings = await self.settings.get(guild_id)
        entries = await self.entries.entries(guild_id)
        if generation == self._generation:
            self._known[guild_id] = (settings, entries)
        return settings, entries

    def _gate(
        self,
        settings: ModerationSettings,
        channel_id: int | None,
        role_ids: Collection[int],
        parent_channel_id: int | None,
    ) -> None:
        self.gate_runs += 1
        gate = settings
        if channel_id is None:
            gate = dataclasses.replace(settings, allowed_channel_ids=frozenset())
        check_gate(
            gate,
            channel_id=channel_id or 0,
            role_ids=role_ids,
            parent_channel_id=parent_channel_id,
        )

    async def first_look(
        self,
        guild_id: int,
        prompt: str,
        *,
        channel_id: int | None,
        role_ids: Collection[int],
        parent_channel_id: int | None = None,
    ) -> Screening:
        """The gate and the blocklist on what this process knows, before the first answer.

        No storage read while the server is known. A refusal on known values is checked
        again on the stored ones first, so a change made elsewhere never refuses wrongly;
        a pass is settled under the create's transaction (``check``)."""
        known = self._known.get(guild_id)
        for fresh in (False, True) if known is not None else (True,):
            settings, entries = (
                known if known is not None and not fresh else await self._stored(guild_id)
            )
            try:
                self._gate(settings, channel_id, role_ids, parent_channel_id)
                if entries:  # an empty list blocks nothing: no trip to the screening thread
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(
                        self._thread, self._screen, guild_id, entries, prompt
                    )
            except Exception:
                if fresh:
                    raise
                continue
            gate = (channel_id, frozenset(role_ids), parent_channel_id)
            return Screening(guild_id, prompt, entries, settings, gate)
        raise AssertionError("unreachable")

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

    async def screen(self, guild_id: int, prompt: str, *, fresh: bool = True) -> Screening:
        """Screen ``prompt`` against the server's stored blocklist; never call it under a lock.

        ``fresh=False``: against the blocklist this process knows, if it knows one (no
        read), for a screening that ``check`` settles under the create's transaction."""
        known = None if fresh else self._known.get(guild_id)
        entries = known[1] if known is not None else await self.entries.entries(guild_id)
        if entries:  # an empty blocklist matches nothing: no trip to the screening thread
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
        if screened is None:
            settings = await self.settings.get(guild_id, tx)
            self._gate(settings, channel_id, role_ids, parent_channel_id)
            await self.screen(guild_id, prompt)
            return settings
        settings, entries = await self._as_stored(guild_id, tx)
        gate_passed = screened.settings == settings and screened.covers(
            guild_id, prompt, channel_id, role_ids, parent_channel_id
        )
        if not gate_passed:
            self._gate(settings, channel_id, role_ids, parent_channel_id)
        if entries != screened.entries:
            raise BlocklistChanged
        return settings

    async def _as_stored(
        self, guild_id: int, tx: UnitOfWork | None
    ) -> tuple[ModerationSettings, tuple[BlocklistEntry, ...]]:
        """The settings and entries as ``tx`` sees them (every create asks, under the write
        lock): while the server's moderation version is the one this process last read them
        at, one small read, else both again (migration 012)."""
        version = await self.settings.version(guild_id, tx)  # first: a change after it
        stamped = self._stamped.get(guild_id)  # moves it past what is read below
        if stamped is not None and stamped[0] == version:
            return stamped[1], stamped[2]
        settings = await self.settings.get(guild_id, tx)
        entries = await self.entries.entries(guild_id, tx)
        if (settings, entries) != self._known.get(guild_id):
            # Changed elsewhere: read under the write lock, so this is the committed state.
            self.forget(guild_id)
            self._known[guild_id] = (settings, entries)
        self._stamped[guild_id] = (version, settings, entries)
        return settings, entries
