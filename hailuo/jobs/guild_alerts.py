"""A provider's refusal of the bot's key or account, told in a server's log channel."""

from __future__ import annotations

import logging

from hailuo.jobs.notify import AdminNotice, Notifier
from hailuo.model.errors import ProviderErrorKind
from storage.port import Storage

log = logging.getLogger(__name__)


async def tell_guild(
    storage: Storage, notifier: Notifier, guild_id: int, provider: str, kind: ProviderErrorKind
) -> None:
    """A refused key or an empty account, in the server's log channel (never a public one)."""
    try:
        settings = await storage.moderation.get(guild_id)
        notice = AdminNotice(
            guild_id,
            f"notice.provider_{kind.value}",
            {"provider": provider},
            log_channel_id=settings.log_channel_id,
        )
        await notifier.admin_notice(notice)
    except Exception:  # best effort: the operator's log has it either way
        log.exception("could not tell guild %d of %s's %s", guild_id, provider, kind.value)
