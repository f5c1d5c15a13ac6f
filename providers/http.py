"""Shared HTTP for every adapter: timeouts on each call and one classification of faults.

What a transport fault means depends on whether the request body may have
reached the provider. A connection that never opened is a refusal
(``UNAVAILABLE``); once the body may have been sent, a submit's outcome is
unknown (``UNKNOWN_OUTCOME``) and must never be retried blindly, while a
query is safe to repeat.

A reply is read up to ``MAX_REPLY_BYTES`` and no further: a provider (or a
proxy in front of it) that streams more is cut off with a ``ReplyTooLarge``,
never buffered whole.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase, TaskState

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10, sock_read=25)
#: The largest reply body read from a provider; every documented reply is a few KiB.
MAX_REPLY_BYTES = 1024 * 1024


class ReplyTooLarge(ProviderError):
    """A reply body over ``MAX_REPLY_BYTES``: read no further, treat as unreadable.

    Retryable (``BAD_REPLY``), except for a 2xx answer to a request that is not
    idempotent: the provider may have accepted a submission whose task id we
    could not read, so it is ``UNKNOWN_OUTCOME`` and is never sent again blindly.
    """


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # decoded JSON, or None when the body was not JSON
    text: str
    headers: dict[str, str]

    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return None


class ProviderHttp:
    """One provider's view of the shared session: its name, base URL and auth headers."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        provider: str,
        base_url: str,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.session = session
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self.timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        idempotent: bool,
    ) -> Reply:
        """Send one request; transport faults become ProviderError, HTTP statuses do not."""
        url = f"{self.base_url}{path}"
        try:
            async with self.session.request(
                method,
                url,
                json=json_body,
                params=params,
                headers=self._headers,
                timeout=self.timeout,
                allow_redirects=False,
            ) as resp:
                text = await self._read_capped(resp, method, path, idempotent=idempotent)
                return Reply(resp.status, _json_or_none(text), text, dict(resp.headers))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection never opened: the body was not sent, so this is a plain refusal.
            kind = ProviderErrorKind.UNAVAILABLE
            raise self.error(kind, None, f"connect: {type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            kind = (
                ProviderErrorKind.UNAVAILABLE if idempotent else ProviderErrorKind.UNKNOWN_OUTCOME
            )
            raise self.error(kind, None, f"{method} {path}: {type(exc).__name__}") from None

    async def _read_capped(
        self, resp: aiohttp.ClientResponse, method: str, path: str, *, idempotent: bool
    ) -> str:
        """The reply's text, read in pieces and abandoned past ``MAX_REPLY_BYTES``."""
        declared = resp.content_length
        body = bytearray()
        if declared is None or declared <= MAX_REPLY_BYTES:
            while len(body) <= MAX_REPLY_BYTES:
                chunk = await resp.content.read(MAX_REPLY_BYTES + 1 - len(body))
                if not chunk:
                    return _decode(bytes(body), resp.charset)
                body += chunk
        accepted = 200 <= resp.status < 300
        kind = (
            ProviderErrorKind.UNKNOWN_OUTCOME
            if accepted and not idempotent
            else ProviderErrorKind.BAD_REPLY
        )
        raise ReplyTooLarge(
            kind,
            provider=self.provider,
            provider_code=None,
            detail=f"{method} {path}: HTTP {resp.status} reply over {MAX_REPLY_BYTES} bytes",
        )

    def error(
        self,
        kind: ProviderErrorKind,
        code: str | None,
        detail: str,
        retry_after: float | None = None,
    ) -> ProviderError:
        return ProviderError(
            kind, provider=self.provider, provider_code=code, detail=detail, retry_after=retry_after
        )

    def object_of(self, reply: Reply) -> dict[str, Any]:
        """The reply's JSON object; BAD_REPLY when the body is anything else."""
        if not isinstance(reply.body, dict):
            raise self.error(ProviderErrorKind.BAD_REPLY, None, "reply is not a JSON object")
        return reply.body

    def status_error(self, reply: Reply, code: str | None = None) -> ProviderError:
        """The common reading of an HTTP error status; adapters refine it from the body."""
        kind = classify_status(reply.status)
        return self.error(
            kind, code or str(reply.status), f"HTTP {reply.status}", reply.retry_after()
        )


def bearer(
    session: aiohttp.ClientSession,
    *,
    provider: str,
    base_url: str,
    api_key: str,
    timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
) -> ProviderHttp:
    """The view of a provider that takes ``Authorization: Bearer <key>`` and JSON bodies."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    return ProviderHttp(
        session, provider=provider, base_url=base_url, headers=headers, timeout=timeout
    )


class Adapter:
    """What the keyed adapters share: their HTTP view, and logs that never show the key.

    Logs go to the adapter's own module logger (``providers.novita``, ...).
    """

    name: str

    def __init__(self, http: ProviderHttp, api_key: str) -> None:
        self.http = http
        self._key = api_key
        self._noted: set[str] = set()
        self._log = logging.getLogger(type(self).__module__)

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        raise NotImplementedError

    def _unknown_status(self, raw: str) -> TaskState:
        """A status word not in the table: keep polling rather than fail a paid task."""
        self._note(f"status:{raw}", "%s: unknown status %r; still polling", self.name, raw[:40])
        return TaskState(phase=Phase.RUNNING, raw_status=raw[:40])

    async def _requery(self, locator: str, meta: dict[str, Any]) -> str:
        """The locator of a fresh query of ``meta["task_id"]`` (URLs expire), else ``locator``."""
        task_id = meta.get("task_id")
        if isinstance(task_id, str) and task_id:
            try:
                state = await self.query(task_id, meta)
            except ProviderError as exc:
                self._log.warning(
                    "%s: re-query for a fresh URL failed (%s); using the old", self.name, exc
                )
            else:
                if state.phase is Phase.SUCCEEDED and state.locator:
                    return state.locator
        return locator

    def _clip(self, text: str) -> str:
        return text.replace(self._key, "***")[:200] if self._key else text[:200]

    def _note(self, key: str, message: str, *args: object) -> None:
        """Log an undocumented shape once per adapter, at WARNING, without any secret."""
        if key not in self._noted:
            self._noted.add(key)
            self._log.warning(message, *args)


class BearerAdapter(Adapter):
    """Built as every adapter is, ``(session, *, api_key, base_url, timeout)``, with Bearer auth."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        http = bearer(
            session, provider=self.name, base_url=base_url, api_key=api_key, timeout=timeout
        )
        super().__init__(http, api_key)


def whole_number(value: Any) -> int | None:
    """A JSON integer (a progress figure), or None for anything else, booleans included."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_status(status: int) -> ProviderErrorKind:
    if status == 429:
        return ProviderErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ProviderErrorKind.AUTH
    if status == 402:
        return ProviderErrorKind.BALANCE
    if status == 404:
        return ProviderErrorKind.NOT_FOUND
    if status in (400, 413, 422):
        return ProviderErrorKind.INVALID_REQUEST
    if status >= 500 or status == 408:
        return ProviderErrorKind.UNAVAILABLE
    return ProviderErrorKind.BAD_REPLY


def _decode(body: bytes, charset: str | None) -> str:
    """The body as text in its declared charset (UTF-8 when none or an unknown one)."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
