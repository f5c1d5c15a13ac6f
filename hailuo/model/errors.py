"""The one error hierarchy of the bot.

Every error a member may read carries a stable ``rule`` code and the numbers
of the rule it broke; the text is rendered from the message catalog
(``hailuo.i18n.messages``) in one place, the command tree's error handler, so a
member reads the same words whichever path failed. ``str()`` of these
errors never contains a secret: it is built from the code and parameters only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class HailuoError(Exception):
    """Root of every error the bot expects; anything else is a bug."""

    def __init__(self, rule: str, /, **params: object) -> None:
        super().__init__(rule)
        self.rule = rule
        self.params: Mapping[str, object] = MappingProxyType(dict(params))

    def __str__(self) -> str:
        if not self.params:
            return self.rule
        args = ", ".join(f"{key}={value!r}" for key, value in sorted(self.params.items()))
        return f"{self.rule} ({args})"


class UserInputError(HailuoError):
    """The member can fix it: shown ephemerally with the exact rule broken."""


class QuotaExceeded(HailuoError):
    """The member (or the server) has no credits or job slots left for this job."""


class ModerationBlocked(HailuoError):
    """A screening rule, a block or a moderator stopped the request."""


class ProviderErrorKind(enum.StrEnum):
    """What went wrong at a provider, which decides what the job does next."""

    RATE_LIMITED = "rate_limited"  # 429, MiniMax 1002: wait, never fail the job
    UNAVAILABLE = "unavailable"  # 5xx, connect failure: retry, then the next provider
    AUTH = "auth"  # rejected key: tell the admins, next provider
    BALANCE = "balance"  # out of money: tell the admins, next provider
    MODERATION = "moderation"  # the content was refused: the job fails, refund
    INVALID_REQUEST = "invalid_request"  # the provider refused our parameters
    NOT_FOUND = "not_found"  # the task or endpoint does not exist (any more)
    UNKNOWN_OUTCOME = "unknown_outcome"  # body sent, no answer: maybe accepted
    BAD_REPLY = "bad_reply"  # an answer we could not read
    EXPIRED = "expired"  # a result URL that no longer serves the file
    #: This provider does not take the request as it stands (a retired tier, an image
    #: form it refuses), though another may: the next provider, never a changed job.
    UNSUPPORTED = "unsupported"


#: Kinds that are about the provider, not the request: the job may go back
#: to ``queued`` and be retried there or sent to the next provider.
PROVIDER_SIDE_KINDS = frozenset(
    {
        ProviderErrorKind.RATE_LIMITED,
        ProviderErrorKind.UNAVAILABLE,
        ProviderErrorKind.AUTH,
        ProviderErrorKind.BALANCE,
        ProviderErrorKind.BAD_REPLY,
        ProviderErrorKind.UNSUPPORTED,
    }
)

#: Why a provider does not take a request (``ProviderError.provider_code`` of an
#: ``UNSUPPORTED`` refusal): the tier asked for, or the image as the bot sends it.
UNSUPPORTED_TIER = "tier"
UNSUPPORTED_IMAGE = "image"


class ProviderError(HailuoError):
    """A provider refused or failed; ``rule`` is the member-safe reason code."""

    def __init__(
        self,
        kind: ProviderErrorKind,
        *,
        provider: str,
        provider_code: str | None = None,
        retry_after: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(f"provider.{kind.value}", provider=provider)
        self.kind = kind
        self.provider = provider
        self.provider_code = provider_code
        self.retry_after = retry_after
        # ``detail`` is for the log only (a provider's status text); adapters
        # must never put a key or an Authorization header in it.
        self.detail = detail[:300]

    @property
    def retryable(self) -> bool:
        return self.kind in PROVIDER_SIDE_KINDS

    def __str__(self) -> str:
        code = f" code={self.provider_code}" if self.provider_code else ""
        return f"{self.provider}: {self.kind.value}{code}"
