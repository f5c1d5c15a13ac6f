"""Stored messages and the body rules Discord enforces on them (discord.py checks none).

A message is kept after deletion (``deleted=True``) together with its edit history, so tests can
assert on what the bot did to it over time, not only on its final state.
"""

from __future__ import annotations

import copy
import mimetypes
from dataclasses import dataclass, field
from typing import Any

from .models import (
    COMPONENTS_V2,
    EPHEMERAL,
    JSON,
    LOADING,
    SUPPRESS_EMBEDS,
    ApiError,
    RecordedPart,
    SimUser,
    StoredAttachment,
    invalid_form,
    iso,
    snowflake_time,
)

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_NONCE = 25
MAX_V2_COMPONENTS = 40
# Only these flags may be changed by an edit; EPHEMERAL and LOADING are fixed at creation.
EDITABLE_FLAGS = SUPPRESS_EMBEDS | COMPONENTS_V2


@dataclass
class MessageEdit:
    """One applied edit: when, the fields the request sent, and the message just before."""

    time: float
    changes: JSON
    before: JSON


@dataclass(eq=False)
class SimMessage:
    """A message as the simulator stores it (bytes of attachments included).

    ``interaction_id`` is set for messages made through an interaction (callback or followup);
    ``author_id`` is the bot's user id for everything the bot sends.
    """

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    nonce: str | None = None
    type: int = 0
    application_id: int | None = None
    interaction_id: int | None = None
    edited_at: float | None = None
    deleted: bool = False
    deleted_at: float | None = None
    edits: list[MessageEdit] = field(default_factory=list)
    reference_id: int | None = None  # the message this one replies to (message_reference)

    @property
    def created_at(self) -> float:
        return snowflake_time(self.id)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True for the "thinking" placeholder a deferred (type 5) response leaves."""
        return bool(self.flags & LOADING)

    def payload(self, author: SimUser, interaction_meta: JSON | None = None) -> JSON:
        """The message object discord.py's ``Message.__init__`` needs (all required keys)."""
        out: JSON = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": author.payload(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at) if self.edited_at is not None else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.payload(ephemeral=self.ephemeral) for a in self.attachments],
            "embeds": self.embeds,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
            "components": self.components,
        }
        if self.guild_id is not None:
            out["guild_id"] = str(self.guild_id)
        if self.nonce is not None:
            out["nonce"] = self.nonce
        if self.reference_id is not None:
            out["message_reference"] = {
                "type": 0,
                "message_id": str(self.reference_id),
                "channel_id": str(self.channel_id),
            }
        if self.application_id is not None and self.interaction_id is not None:
            out["application_id"] = str(self.application_id)
            out["webhook_id"] = str(self.application_id)
        if interaction_meta is not None:
            out["interaction_metadata"] = interaction_meta
        return out

    def snapshot(self) -> JSON:
        """The editable state, copied, for the edit history."""
        return {
            "content": self.content,
            "embeds": copy.deepcopy(self.embeds),
            "components": copy.deepcopy(self.components),
            "attachments": [a.filename for a in self.attachments],
            "flags": self.flags,
        }

    def apply_edit(self, body: JSON, uploads: list[StoredAttachment], at: float) -> None:
        """Apply a PATCH body the way Discord does: present keys replace, absent keys stay.

        ``attachments`` (if sent) lists the existing attachments to keep plus the new uploads;
        without it, uploads are appended. A loading (deferred) message stops loading.
        """
        self.edits.append(MessageEdit(time=at, changes=copy.deepcopy(body), before=self.snapshot()))
        for key in ("content", "embeds", "components"):
            if key in body:
                empty: Any = "" if key == "content" else []
                setattr(self, key, body[key] if body[key] is not None else empty)
        if body.get("flags") is not None:
            self.flags = (self.flags & ~EDITABLE_FLAGS) | (int(body["flags"]) & EDITABLE_FLAGS)
        self.attachments = merge_attachments(self.attachments, body.get("attachments"), uploads)
        self.flags &= ~LOADING
        self.edited_at = at


def merge_attachments(
    existing: list[StoredAttachment], wanted: list[JSON] | None, uploads: list[StoredAttachment]
) -> list[StoredAttachment]:
    """Resolve an edit's ``attachments`` array against kept attachments and new uploads."""
    if wanted is None:
        return [*existing, *uploads]
    keep_ids = {str(a.get("id")) for a in wanted}
    return [a for a in existing if str(a.id) in keep_ids] + uploads


def guess_content_type(filename: str) -> str | None:
    """Discord infers an upload's type from its name; discord.py labels every part octet-stream."""
    return mimetypes.guess_type(filename)[0]


def file_parts_by_index(parts: list[RecordedPart]) -> dict[int, RecordedPart]:
    """Map ``files[n]`` parts to n; discord.py names them ``files[0]``, ``files[1]``..."""
    out: dict[int, RecordedPart] = {}
    for index, part in enumerate(p for p in parts if p.filename is not None):
        name = part.name
        if name.startswith("files[") and name.endswith("]") and name[6:-1].isdigit():
            out[int(name[6:-1])] = part
        else:
            out[index] = part
    return out


def validate_message_body(body: JSON) -> None:
    """The subset of Discord's message validation that bots trip over; 400/50035 otherwise."""
    content = body.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        raise invalid_form(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    nonce = body.get("nonce")
    if isinstance(nonce, str) and len(nonce) > MAX_NONCE:
        raise invalid_form(["nonce"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    components = body.get("components") or []
    if int(body.get("flags") or 0) & COMPONENTS_V2:
        _validate_v2_components(components)
    else:
        _validate_rows(components)


def _validate_rows(rows: list[JSON]) -> None:
    """Classic components: at most 5 action rows, 5 buttons or 1 select per row."""
    if len(rows) > MAX_ROWS:
        raise invalid_form(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for r, row in enumerate(rows):
        if row.get("type") != 1:
            raise invalid_form(
                ["components", r], "UNION_TYPE_CHOICES", "Value of field 'type' must be 1."
            )
        children = row.get("components") or []
        if not 1 <= len(children) <= MAX_BUTTONS_PER_ROW:
            raise invalid_form(
                ["components", r, "components"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            )
        if any(c.get("type") != 2 for c in children) and len(children) > 1:
            raise invalid_form(
                ["components", r, "components"],
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for c, child in enumerate(children):
            _validate_custom_id(child, ["components", r, "components", c])


def _validate_v2_components(components: list[JSON]) -> None:
    """Components v2: a total of 40 components, and every custom_id within 100 characters."""
    total = 0

    def walk(items: list[JSON], path: list[str | int]) -> None:
        nonlocal total
        for i, item in enumerate(items):
            total += 1
            _validate_custom_id(item, [*path, i])
            walk(item.get("components") or [], [*path, i, "components"])
            if isinstance(item.get("accessory"), dict):
                walk([item["accessory"]], [*path, i, "accessory"])

    walk(components, ["components"])
    if total > MAX_V2_COMPONENTS:
        raise invalid_form(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length.")


def _validate_custom_id(component: JSON, path: list[str | int]) -> None:
    custom_id = component.get("custom_id")
    if custom_id is not None and not 1 <= len(str(custom_id)) <= MAX_CUSTOM_ID:
        raise invalid_form(
            [*path, "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )


def unknown_message() -> ApiError:
    return ApiError(404, 10008, "Unknown Message")
