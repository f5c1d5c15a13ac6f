"""Which process syncs the slash commands: once per new definition, across every process.

Discord rate-limits command syncs, and a bot split over several processes (shards) starts
them all at once on one database. The hash of the synced definition is kept in the shared
``bot_state``; a process whose definition hashes differently claims the sync with a
compare-and-set (``syncing:<hash>:<until>``), so of the processes that read the same
value exactly one wins, syncs, and writes the plain hash. A claim that its process never
finished (it died mid-sync) stops counting at ``until``; a sync that failed is written
``failed:<hash>``, so the next start tries again.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)

COMMANDS_HASH_KEY = "commands_hash"
#: How long a claim holds off the other processes: a sync takes a second or two.
CLAIM_SECONDS = 120.0
#: Compare-and-set rounds before giving up on a value that keeps changing under us.
ATTEMPTS = 5


class SharedState(Protocol):
    """The shared key-value rows (``Desk.remembered`` and friends)."""

    async def remembered(self, key: str) -> str | None: ...

    async def remember(self, key: str, value: str) -> None: ...

    async def swap_remembered(self, key: str, expected: str | None, value: str) -> bool: ...


def _claimed_by_other(stored: str | None, digest: str, now: float) -> bool:
    """Another process is syncing this very definition right now."""
    if stored is None or not stored.startswith("syncing:"):
        return False
    _, claimed, until = [*stored.split(":", 2), "", ""][:3]
    try:
        return claimed == digest and float(until) > now
    except ValueError:
        return False


async def claim_sync(state: SharedState, digest: str, now: float) -> str | None:
    """The claim to pass to ``finish_sync`` when this process must sync, else None."""
    for _ in range(ATTEMPTS):
        stored = await state.remembered(COMMANDS_HASH_KEY)
        if stored == digest:
            return None
        if _claimed_by_other(stored, digest, now):
            log.info("another process is syncing the commands; not syncing")
            return None
        claim = f"syncing:{digest}:{now + CLAIM_SECONDS}"
        if await state.swap_remembered(COMMANDS_HASH_KEY, stored, claim):
            return claim
    log.warning("the stored command hash kept changing; not syncing")
    return None


async def finish_sync(state: SharedState, claim: str, digest: str, *, ok: bool) -> None:
    """Record the outcome: the plain hash after a sync, ``failed:`` so the next start retries."""
    outcome = digest if ok else f"failed:{digest}"
    if not await state.swap_remembered(COMMANDS_HASH_KEY, claim, outcome):
        log.warning("the command sync's claim was taken over before it finished")
