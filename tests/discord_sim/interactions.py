"""Interactions the simulator dispatched, and the INTERACTION_CREATE payloads it sends.

A :class:`SimInteraction` is the test's handle on one slash command, button press or modal
submit: it records the callback(s), the response, followups and ``@original`` edits, and knows
the two clocks Discord applies (3 s from dispatch for the callback, 15 min from the snowflake's
time for the webhook token).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .messages import SimMessage
from .models import (
    EPHEMERAL,
    JSON,
    RecordedCall,
    RecordedPart,
    SimAttachment,
    SimChannel,
    SimGuild,
    SimMember,
    SimUser,
    snowflake_time,
)

CALLBACK_DEADLINE = 3.0
TOKEN_LIFETIME = 15 * 60.0

PING, APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5

# Callback types each interaction type may answer with (Discord rejects the others).
ALLOWED_CALLBACKS: dict[int, frozenset[int]] = {
    PING: frozenset({1}),
    APPLICATION_COMMAND: frozenset({4, 5, 9, 10, 12}),
    COMPONENT: frozenset({4, 5, 6, 7, 9, 10, 12}),
    AUTOCOMPLETE: frozenset({8}),
    MODAL_SUBMIT: frozenset({4, 5, 6, 7, 10, 12}),
}


@dataclass(eq=False)
class SimInteraction:
    """One dispatched interaction and everything the bot did with it.

    ``response_type``/``response_data`` describe the accepted initial callback (None until then);
    rejected callbacks stay visible in ``callbacks``. ``original_message`` is the response
    message, or for a component interaction the message that carries the component.
    """

    id: int
    token: str
    type: int
    application_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: JSON
    dispatched_at: float
    attachment_size_limit: int
    callbacks: list[RecordedCall] = field(default_factory=list)
    webhook_calls: list[RecordedCall] = field(default_factory=list)
    response_type: int | None = None
    response_data: JSON | None = None
    response_files: list[RecordedPart] = field(default_factory=list)
    ephemeral: bool = False
    original_message: SimMessage | None = None
    followups: list[SimMessage] = field(default_factory=list)
    original_edits: list[JSON] = field(default_factory=list)
    original_deleted: bool = False
    _answered: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def created_at(self) -> float:
        """The time in the snowflake id; the 15-minute token life counts from here."""
        return snowflake_time(self.id)

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def modal(self) -> JSON | None:
        """The modal the bot opened (callback type 9), if any."""
        return self.response_data if self.response_type == 9 else None

    def callback_late(self, now: float) -> bool:
        return now - self.dispatched_at > CALLBACK_DEADLINE

    def token_expired(self, now: float) -> bool:
        return now - self.created_at > TOKEN_LIFETIME

    def note_call(self, call: RecordedCall) -> None:
        """File a finished (status known) call under callbacks or webhook calls."""
        if call.route is not None and call.route.endswith("/callback"):
            self.callbacks.append(call)
            self._answered.set()
        else:
            self.webhook_calls.append(call)

    def accept_callback(self, kind: int, data: JSON | None, files: list[RecordedPart]) -> None:
        self.response_type = kind
        self.response_data = data
        self.response_files = files
        self.ephemeral = bool(int((data or {}).get("flags") or 0) & EPHEMERAL)

    def owns(self, message: SimMessage) -> bool:
        """Whether this interaction's webhook may address ``message`` by id."""
        return message is self.original_message or message in self.followups

    async def wait_response(self, timeout: float = 10.0) -> RecordedCall:
        """Wait for the first callback attempt (accepted or rejected) and return it."""
        async with asyncio.timeout(timeout):
            await self._answered.wait()
        return self.callbacks[0]


def option_payload(name: str, value: Any) -> JSON:
    """One leaf option; the type is inferred from the Python value.

    Pass ``{"type": 6, "value": "123"}`` to send another type verbatim (the caller then supplies
    whatever ``resolved`` data that type needs).
    """
    if isinstance(value, dict):
        return {"name": name, **value}
    if isinstance(value, bool):
        kind = 5
    elif isinstance(value, int):
        kind = 4
    elif isinstance(value, float):
        kind = 10
    else:
        kind, value = 3, str(value)
    return {"name": name, "type": kind, "value": value}


def nest_options(path: list[str], leaf: list[JSON]) -> list[JSON]:
    """``["hailuo", "text"]`` -> a subcommand option; three names -> group then subcommand."""
    if len(path) == 1:
        return leaf
    if len(path) == 2:
        return [{"name": path[1], "type": 1, "options": leaf}]
    if len(path) == 3:
        sub = {"name": path[2], "type": 1, "options": leaf}
        return [{"name": path[1], "type": 2, "options": [sub]}]
    raise ValueError(f"a slash command path has 1 to 3 names, got {path!r}")


def resolved_attachment(attachment_id: int, att: SimAttachment, url: str) -> JSON:
    """What Discord puts in ``data.resolved.attachments``: declared metadata and a CDN URL."""
    return {
        "id": str(attachment_id),
        "filename": att.filename,
        "size": att.size if att.size is not None else len(att.data),
        "url": url,
        "proxy_url": url,
        "content_type": att.content_type,
        "width": att.width,
        "height": att.height,
        "ephemeral": True,
    }


@dataclass
class InteractionContext:
    """Who, where and with which limits an interaction happens (guild channels only)."""

    guild: SimGuild
    channel: SimChannel
    user: SimUser
    member: SimMember
    permissions: int
    app_permissions: int
    locale: str
    attachment_size_limit: int


def interaction_payload(
    *, interaction_id: int, token: str, kind: int, app_id: int, ctx: InteractionContext, data: JSON
) -> JSON:
    """The INTERACTION_CREATE ``d`` with every key discord.py 2.7.1 reads (discord.md section 5)."""
    guild = ctx.guild
    return {
        "id": str(interaction_id),
        "application_id": str(app_id),
        "type": kind,
        "token": token,
        "version": 1,
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
        "guild_locale": guild.preferred_locale,
        "channel_id": str(ctx.channel.id),
        "channel": ctx.channel.payload(),
        "member": ctx.member.payload(ctx.user, permissions=ctx.permissions),
        "app_permissions": str(ctx.app_permissions),
        "locale": ctx.locale,
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "entitlements": [],
        "attachment_size_limit": ctx.attachment_size_limit,
    }
