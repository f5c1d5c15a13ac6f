"""A server's moderation settings and a member's block, as records, with their rules.

The settings check the values a moderator types (``UserInputError`` naming the rule), so
the rule lives with the record and not in the storage that keeps it. No I/O here.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hailuo.model.errors import UserInputError

DAY = 86_400


class ApprovalMode(enum.StrEnum):
    OFF = "off"  # nobody's jobs are held
    NEW_MEMBERS = "new_members"  # recent joiners, or members without a trusted role
    EVERYONE = "everyone"  # every job waits for a moderator


#: The settings that hold id sets (stored as JSON lists).
ID_SETS = ("allowed_channel_ids", "allowed_role_ids", "trusted_role_ids")
_MINIMUMS = {
    "new_member_days": 0,
    "approval_expiry_seconds": 60,
    "strike_threshold": 1,
    "strike_window_seconds": 60,
}


@dataclass(frozen=True)
class ModerationSettings:
    """A server's moderation settings; an empty id set means "all" (channels) or "everyone"."""

    guild_id: int
    allowed_channel_ids: frozenset[int] = frozenset()
    allowed_role_ids: frozenset[int] = frozenset()
    moderator_role_id: int | None = None
    log_channel_id: int | None = None
    approval_mode: ApprovalMode = ApprovalMode.OFF
    new_member_days: int = 7
    trusted_role_ids: frozenset[int] = frozenset()
    approval_expiry_seconds: int = DAY
    strike_threshold: int = 3
    strike_window_seconds: int = 7 * DAY

    def __post_init__(self) -> None:
        for name in ID_SETS:
            object.__setattr__(self, name, frozenset(int(v) for v in getattr(self, name)))
        try:
            object.__setattr__(self, "approval_mode", ApprovalMode(self.approval_mode))
        except ValueError:
            raise UserInputError(
                "moderation.setting_choice",
                setting="approval_mode",
                value=self.approval_mode,
                allowed=tuple(ApprovalMode),
            ) from None
        for name, minimum in _MINIMUMS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise UserInputError(
                    "moderation.setting_too_small", setting=name, value=value, minimum=minimum
                )


#: Fields an update may change (everything but the server id).
SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(ModerationSettings)) - {"guild_id"}


@dataclass(frozen=True)
class SettingsChange:
    """The settings before and after an update, and each changed field's (old, new)."""

    old: ModerationSettings
    new: ModerationSettings
    changed: Mapping[str, tuple[Any, Any]]


@dataclass(frozen=True)
class Block:
    id: int
    guild_id: int
    user_id: int
    blocked_by: int | None  # None: the bot (strike threshold)
    reason: str
    created_at: float
    until: float | None  # None: until lifted
    lifted_by: int | None
    lifted_at: float | None

    def active(self, now: float) -> bool:
        return self.lifted_at is None and (self.until is None or now < self.until)
