"""Slash command sync: only when the definition changed, and by one process of many.

Discord rate-limits syncs, so a plain restart sends no ``PUT .../commands``: the hash of
what a sync would send is kept in the (shared) database, and of several processes that
start on a new definition at once, the one that wins ``hailuo.command_sync``'s
compare-and-set syncs. ``--sync`` (``force``) syncs whatever the hash says.
"""

from __future__ import annotations

import hashlib
import json
import logging

import discord
from discord import app_commands

from hailuo.clock import Clock
from hailuo.command_sync import COMMANDS_HASH_KEY, SharedState, claim_sync, finish_sync

log = logging.getLogger(__name__)


async def definition_hash(tree: app_commands.CommandTree[discord.Client]) -> str:
    """The hash of the payload ``tree.sync`` sends."""
    # ``to_dict`` leaves out the *_localizations; the translated payload is what
    # ``tree.sync`` sends when a translator is set, so a changed translation re-syncs.
    translator = tree.translator
    definition = json.dumps(
        [
            await command.get_translated_payload(tree, translator)
            if translator is not None
            else command.to_dict(tree)
            for command in tree.get_commands()
        ],
        sort_keys=True,
    )
    return hashlib.sha256(definition.encode()).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree[discord.Client],
    state: SharedState,
    clock: Clock,
    *,
    guild_id: int | None,
    force: bool = False,
) -> None:
    """Sync when the stored hash differs (and this process wins the claim), or when forced."""
    digest = await definition_hash(tree)
    if force:
        await _sync(tree, guild_id)
        await state.remember(COMMANDS_HASH_KEY, digest)
        return
    # Every process of a sharded bot starts here at once: one of them wins the claim.
    claim = await claim_sync(state, digest, clock())
    if claim is None:
        log.info("commands unchanged; not syncing")
        return
    ok = False
    try:
        await _sync(tree, guild_id)
        ok = True
    finally:
        await finish_sync(state, claim, digest, ok=ok)


async def _sync(tree: app_commands.CommandTree[discord.Client], guild_id: int | None) -> None:
    guild = discord.Object(guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    synced = await tree.sync(guild=guild)
    log.info("synced %d commands", len(synced))
