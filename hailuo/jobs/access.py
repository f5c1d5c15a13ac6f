"""What the bot must be allowed to do in a channel before a job there may cost anything.

A job's life needs the bot to see the channel, post its card and the video, embed the
card, and read the history that guards against a second post after a crash. The
interaction tells what the bot may do where the command was typed (Discord's
``app_permissions``); a channel missing any of these is refused before anything is
reserved, naming what is missing, so an admin knows what to grant. ``doctor`` uses the
same list for the configured channels (``permissions_from`` computes them from the
server's roles and the channel's overwrites, as Discord does).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from hailuo.i18n.messages import Term
from hailuo.model.errors import UserInputError

#: Discord's permission names, with their bits (discord.py's ``Permissions`` names).
PERMISSION_BITS: Mapping[str, int] = {
    "administrator": 1 << 3,
    "view_channel": 1 << 10,
    "send_messages": 1 << 11,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "create_public_threads": 1 << 35,
    "send_messages_in_threads": 1 << 38,
}
#: What a job needs in its channel, in the order a refusal names them.
REQUIRED: tuple[str, ...] = (
    "view_channel",
    "send_messages",
    "attach_files",
    "embed_links",
    "read_message_history",
)
#: Every bit: what Administrator (or the server's owner) has in any channel.
ALL_PERMISSIONS = (1 << 53) - 1
#: The invite's permission integer: exactly ``REQUIRED`` (README, "Invite the bot").
INVITE_PERMISSIONS = sum(PERMISSION_BITS[name] for name in REQUIRED)


def missing(granted: Collection[str]) -> list[str]:
    """The required permissions not in ``granted`` (names); Administrator grants all."""
    if "administrator" in granted:
        return []
    return [name for name in REQUIRED if name not in granted]


def check_channel(granted: Collection[str]) -> None:
    """Raise the rule naming every missing permission, before anything is reserved."""
    lacking = missing(granted)
    if lacking:
        raise UserInputError(
            "access.bot_missing", permissions=[Term(f"permission.{name}") for name in lacking]
        )


#: What a thread per job (a server's choice) needs besides ``REQUIRED``.
THREAD_REQUIRED: tuple[str, ...] = ("create_public_threads", "send_messages_in_threads")


def check_threads(granted: Collection[str]) -> None:
    """Raise the rule naming what a thread per job lacks, before anything is reserved."""
    if "administrator" in granted:
        return
    lacking = [name for name in THREAD_REQUIRED if name not in granted]
    if lacking:
        raise UserInputError(
            "access.bot_missing", permissions=[Term(f"permission.{name}") for name in lacking]
        )


def granted_names(value: int) -> set[str]:
    """The known permission names set in a permission integer."""
    return {name for name, bit in PERMISSION_BITS.items() if value & bit}


def permissions_from(
    *,
    guild_id: int,
    roles: Iterable[Mapping[str, Any]],
    member_roles: Collection[int],
    member_id: int,
    overwrites: Iterable[Mapping[str, Any]],
) -> int:
    """A member's permissions in a channel from the REST objects, by Discord's rules:
    @everyone and the member's roles, Administrator grants all, then the channel's
    overwrites for @everyone, for the member's roles (denies, then allows), for the member."""
    by_id = {int(role["id"]): int(role.get("permissions") or 0) for role in roles}
    perms = by_id.get(guild_id, 0)
    for role_id in member_roles:
        perms |= by_id.get(int(role_id), 0)
    if perms & PERMISSION_BITS["administrator"]:
        return ALL_PERMISSIONS
    table = {int(o["id"]): o for o in overwrites}

    def apply(current: int, overwrite: Mapping[str, Any] | None) -> int:
        if overwrite is None:
            return current
        return (current & ~int(overwrite.get("deny") or 0)) | int(overwrite.get("allow") or 0)

    perms = apply(perms, table.get(guild_id))
    deny = allow = 0
    for role_id in member_roles:
        found = table.get(int(role_id))
        if found is not None and int(found.get("type", 0)) == 0:
            deny |= int(found.get("deny") or 0)
            allow |= int(found.get("allow") or 0)
    perms = (perms & ~deny) | allow
    own = table.get(member_id)
    if own is not None and int(own.get("type", 0)) == 1:
        perms = apply(perms, own)
    return perms
