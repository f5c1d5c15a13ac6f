"""Provider callbacks: unguessable per-job URLs, and what a call to one may do.

When ``HAILUO_PUBLIC_URL`` is set, each submission to a provider that calls
back carries ``{public}/callbacks/{provider}/{token}``. The token is
``{job id}.{mac}``, where mac is HMAC-SHA256 of ``"{provider}:{job id}"``
under a random per-install secret kept in the ``bot_state`` table (created
on first start). So it is unguessable, bound to one job and one provider,
needs no write before the submit and no look-up to check, and survives a
restart because the secret does. (The job id it shows is already in the
status message's title.)

A call never changes a job by what its body says: the provider's status
reply stays the source of truth, so a valid call only asks the worker to
query that job's task now; polling goes on as the fallback either way.

- MiniMax and gpt.ge: a body with ``challenge`` is echoed as
  ``{"challenge": ...}`` at once (MiniMax wants it within 3 s): the token check
  is a hash in memory, with no database wait.
- Freepik (only when ``FREEPIK_WEBHOOK_SECRET`` is set): ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature`` are checked first, an
  HMAC-SHA256 over ``"{id}.{timestamp}.{raw body}"``, base64, compared in
  constant time against each ``v1,<sig>`` of the space-separated list; a
  timestamp more than 5 minutes off the clock is refused. A replay inside that
  window can only cause one more status query.

A wrong token is 404 and a bad signature 401; neither touches anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from aiohttp import web

from hailuo.clock import Clock
from hailuo.model.config import Secret

log = logging.getLogger(__name__)

SECRET_KEY = "callback_secret"  # noqa: S105 - the bot_state key, not a secret
#: Providers whose callbacks start with MiniMax's challenge (gpt.ge passes MiniMax's through).
CHALLENGE_PROVIDERS = frozenset({"minimax", "gptge"})
SIGNED_PROVIDERS = frozenset({"freepik"})
TIMESTAMP_TOLERANCE = 300.0
_MAC_CHARS = 32
_TOKEN = re.compile(rf"(?P<job>[0-9]{{1,18}})\.(?P<mac>[A-Za-z0-9_-]{{{_MAC_CHARS}}})", re.ASCII)
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)


class StateStore(Protocol):
    async def get_state(self, key: str) -> str | None: ...

    async def put_state(self, key: str, value: str) -> None: ...


class CallbackTokens:
    """Per-job callback tokens derived from a per-install secret in ``bot_state``."""

    def __init__(self, state: StateStore) -> None:
        self._state = state
        self._secret: bytes | None = None

    async def load(self) -> None:
        """Read the install's secret, creating it on the first start."""
        stored = await self._state.get_state(SECRET_KEY)
        if stored is None:
            stored = secrets.token_hex(32)
            await self._state.put_state(SECRET_KEY, stored)
        self._secret = bytes.fromhex(stored)

    def token(self, provider: str, job_id: int) -> str:
        return f"{job_id}.{self._mac(provider, job_id)}"

    def job_id(self, provider: str, token: str) -> int | None:
        """The job a token names, or None when it is not one we issued for ``provider``."""
        if self._secret is None:
            log.warning("a callback arrived before the callback secret was loaded")
            return None
        # ASCII digits only: ``str.isdigit`` also accepts "²" (then ``int`` raises) and
        # other scripts' digits, and an unauthenticated caller must never reach a 500.
        parsed = _TOKEN.fullmatch(token)
        if parsed is None:
            return None
        job_id, mac = int(parsed["job"]), parsed["mac"]
        if not hmac.compare_digest(mac.encode(), self._mac(provider, job_id).encode()):
            return None
        return job_id

    def _mac(self, provider: str, job_id: int) -> str:
        return self.sign(f"{provider}:{job_id}")

    def sign(self, text: str) -> str:
        """The install's MAC of ``text`` (URL-safe): callback tokens, signed image URLs."""
        if self._secret is None:
            raise RuntimeError("CallbackTokens.load() must run before tokens are issued")
        digest = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:_MAC_CHARS]

    def signed(self, text: str, mac: str) -> bool:
        """Whether ``mac`` is ours for ``text`` (constant time); False before ``load``."""
        if self._secret is None:
            return False
        return hmac.compare_digest(mac.encode(), self.sign(text).encode())


def accepting(providers: Iterable[str], freepik_secret: Secret | None) -> frozenset[str]:
    """The configured providers that get a callback URL (Freepik only with its secret)."""
    configured = set(providers)
    names = configured & CHALLENGE_PROVIDERS
    if freepik_secret is not None and "freepik" in configured:
        names.add("freepik")
    return frozenset(names)


def callback_urls(
    tokens: CallbackTokens, public_url: str, providers: frozenset[str]
) -> Callable[[str, int], str | None]:
    """The worker's ``callback_url``: a URL for a provider that calls back, else None."""
    base = public_url.rstrip("/")

    def url_for(provider: str, job_id: int) -> str | None:
        if provider not in providers:
            return None
        return f"{base}/callbacks/{provider}/{tokens.token(provider, job_id)}"

    return url_for


def freepik_signature_ok(
    secret: Secret,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = TIMESTAMP_TOLERANCE,
) -> bool:
    """Freepik's (Svix-style) webhook signature check; see the module docstring."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    listed = headers.get("webhook-signature", "")
    if not msg_id or not _TIMESTAMP.fullmatch(stamp) or not listed:
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    raw = secret.reveal()
    try:
        # Svix-style secrets are "whsec_" + base64 of the key; anything else is the key itself.
        key = base64.b64decode(raw.removeprefix("whsec_")) if raw.startswith("whsec_") else None
    except (binascii.Error, ValueError):
        key = None
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key or raw.encode(), signed, hashlib.sha256).digest())
    matched = False
    for entry in listed.split():
        _, _, signature = entry.partition(",")
        matched |= hmac.compare_digest(signature.encode(), expected)
    return matched


class CallbackRoutes:
    """``POST /callbacks/{provider}/{token}`` on the bot's own HTTP server."""

    def __init__(
        self,
        tokens: CallbackTokens,
        *,
        poll: Callable[[int, str], None],
        providers: frozenset[str],
        clock: Clock,
        freepik_secret: Secret | None = None,
    ) -> None:
        self.tokens = tokens
        self.poll = poll
        self.providers = providers
        self.clock = clock
        self.freepik_secret = freepik_secret

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/callbacks/{provider}/{token}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        job_id = (
            self.tokens.job_id(provider, request.match_info["token"])
            if provider in self.providers
            else None
        )
        if job_id is None:
            return web.json_response({"error": "not found"}, status=404)
        raw = await request.read()
        if provider in SIGNED_PROVIDERS and (
            self.freepik_secret is None
            or not freepik_signature_ok(self.freepik_secret, request.headers, raw, self.clock())
        ):
            log.warning("refused a %s callback for job %d: bad signature", provider, job_id)
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the stack
            return web.json_response({"error": "not JSON"}, status=400)
        if provider in CHALLENGE_PROVIDERS and isinstance(body, dict) and "challenge" in body:
            return web.json_response({"challenge": body["challenge"]})
        # Never trusted: the worker asks the provider what the task's state is.
        self.poll(job_id, provider)
        return web.json_response({"status": "received"})
