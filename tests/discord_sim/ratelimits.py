"""Discord's REST rate limits as the simulator enforces them: per-route buckets and headers.

Discord (``topics/rate-limits.mdx``) limits each route per top-level resource (the channel,
guild or webhook in the path) and says so on every answer: ``X-RateLimit-Limit``,
``-Remaining``, ``-Reset`` (epoch seconds), ``-Reset-After`` (seconds) and ``-Bucket`` (an
opaque hash shared by the routes that share a limit). A bucket is a window that opens with
the first request after a reset and gives back all of its ``limit`` when it ends, which is
what discord.py assumes (``Ratelimit.reset`` restores ``limit``). A request over the limit is
answered 429 with ``{message, retry_after, global}``, ``Retry-After`` (whole seconds, rounded
up), ``X-RateLimit-Scope`` and ``Via`` (without ``Via`` discord.py takes it for Cloudflare).

Discord publishes no per-route numbers. The one the issue names is the folklore message
limit, 5 creates per 5 s per channel (``discord.md`` §3), and it is the default here. Edits
are limited per channel too (5 per 5 s). As observed on Discord (discord-api-docs #1442),
``POST .../messages`` and ``PATCH .../messages/{id}`` answer with the same
``X-RateLimit-Bucket`` hash while counting apart, so that is the default: one hash, two
windows (``Limit.counter`` makes routes count together). Every other route gets a roomy
default so each answer still carries real headers without slowing other tests down.
Windows run on the simulator's injected clock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

#: Route templates (``"METHOD /path/{param}"``) of the message limits the issue names.
MESSAGE_CREATE = "POST /channels/{channel_id}/messages"
MESSAGE_EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"

#: Path parameters that scope a bucket (Discord's "major parameters").
MAJOR_PARAMETERS = ("channel_id", "guild_id", "app_id", "interaction_id", "token")


@dataclass(frozen=True)
class Limit:
    """``limit`` requests per ``window`` seconds.

    ``bucket`` names the hash sent in ``X-RateLimit-Bucket`` (default: the route's own);
    ``counter`` names the window the requests count in (default: the route's own), so two
    routes may share a hash, a window, or both.
    """

    limit: int
    window: float
    bucket: str = ""
    counter: str = ""


#: Discord's message window, in seconds. The test suite (``tests/conftest.py``) runs it
#: ten times faster, same shape, so a test that is not about rate limits does not wait
#: out real windows; the rate-limit tests and ``bench/channel.py`` pass the real 5 s.
MESSAGE_WINDOW = 5.0


def default_limits(
    *, creates: Limit | None = None, edits: Limit | None = None, window: float | None = None
) -> dict[str, Limit]:
    """The message create and edit limits (5 per window per channel unless told otherwise)."""
    seconds = MESSAGE_WINDOW if window is None else window
    return {
        MESSAGE_CREATE: creates or Limit(5, seconds, bucket="messages"),
        MESSAGE_EDIT: edits or Limit(5, seconds, bucket="messages"),
    }


@dataclass
class _Window:
    limit: int
    window: float
    used: int = 0
    resets_at: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided for one request: the headers, and whether it may go."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    scope: str = "user"
    is_global: bool = False


def bucket_hash(name: str) -> str:
    """An opaque hash like Discord's (stable per bucket name)."""
    return hashlib.sha1(name.encode()).hexdigest()[:32]  # an id, not security


def _seconds(value: float) -> str:
    """Seconds with millisecond precision, rounded up: a client never comes back too early."""
    return f"{math.ceil(value * 1000) / 1000:.3f}"


@dataclass
class RateLimiter:
    """Buckets keyed by (bucket, major parameters); ``hits`` counts the 429s it answered."""

    clock: Callable[[], float]
    limits: dict[str, Limit] = field(default_factory=default_limits)
    #: Every route not in ``limits``: roomy, so only the message limits shape a test.
    fallback: Limit = Limit(50, 1.0)
    #: Discord's global limit (50 requests a second for every bot); None: not enforced.
    global_limit: Limit | None = None
    hits: int = 0
    global_hits: int = 0
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)

    def check(self, route: str, params: dict[str, str], *, exempt_global: bool) -> Verdict:
        """Count one request on ``route`` (a template) and say whether it may go."""
        now = self.clock()
        if self.global_limit is not None and not exempt_global:
            window = self._window(("global", ""), self.global_limit, now)
            if window.used >= window.limit:
                self.global_hits += 1
                retry = window.resets_at - now
                return Verdict(False, {"X-RateLimit-Global": "true"}, retry, "global", True)
            window.used += 1
        limit = self.limits.get(route, self.fallback)
        name = limit.bucket or route
        major = "+".join(params[p] for p in MAJOR_PARAMETERS if p in params)
        window = self._window((limit.counter or route, major), limit, now)
        allowed = window.used < window.limit
        if allowed:
            window.used += 1
        else:
            self.hits += 1
        reset_after = max(0.0, window.resets_at - now)
        headers = {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(window.limit - window.used),
            "X-RateLimit-Reset": _seconds(window.resets_at),
            "X-RateLimit-Reset-After": _seconds(reset_after),
            "X-RateLimit-Bucket": bucket_hash(name),
        }
        return Verdict(allowed, headers, reset_after)

    def _window(self, key: tuple[str, str], limit: Limit, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.resets_at:
            # A window opens with the first request after the last one ended.
            window = _Window(limit.limit, limit.window, resets_at=now + limit.window)
            self._windows[key] = window
        return window


def too_many_requests(verdict: Verdict) -> tuple[dict[str, object], dict[str, str]]:
    """The body and headers of Discord's 429 for a refused request."""
    body: dict[str, object] = {
        "message": "You are being rate limited.",
        "retry_after": float(_seconds(verdict.retry_after)),
        "global": verdict.is_global,
    }
    headers = {
        **verdict.headers,
        "Retry-After": str(max(1, math.ceil(verdict.retry_after))),
        "X-RateLimit-Scope": verdict.scope,
        "Via": "1.1 google",
    }
    return body, headers
