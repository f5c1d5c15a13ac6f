"""Provider replies are read up to 1 MiB and no further; more is a clear, retryable fault."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hailuo.model.errors import ProviderError, ProviderErrorKind
from providers.http import MAX_REPLY_BYTES, ProviderHttp, ReplyTooLarge
from providers.minimax import MiniMaxProvider

pytestmark = pytest.mark.timeout(30)

CHUNK = b"[" + b"0," * 32767 + b"0"  # 64 KiB of a JSON array that never closes


class EndlessReplies:
    """Answers every request with a body that never ends (until the client hangs up)."""

    def __init__(self) -> None:
        self.status = 200
        self.sent = 0
        self.declared: int | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=self.status)
        resp.content_type = "application/json"
        if self.declared is not None:
            resp.content_length = self.declared
        await resp.prepare(request)
        try:
            while self.sent < 512 * MAX_REPLY_BYTES:  # a safety stop at 512 MiB
                await resp.write(CHUNK)
                self.sent += len(CHUNK)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp


@pytest.fixture
async def endless() -> AsyncIterator[tuple[EndlessReplies, str]]:
    replies = EndlessReplies()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", replies.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield replies, str(server.make_url("")).rstrip("/")


async def _request(base: str, method: str, *, idempotent: bool) -> ProviderError:
    async with aiohttp.ClientSession() as session:
        http = ProviderHttp(session, provider="minimax", base_url=base, headers={})
        with pytest.raises(ReplyTooLarge) as caught:
            await http.request(method, "/v1/anything", idempotent=idempotent)
    return caught.value


async def test_bounded_read_endless_query_reply_is_cut_off_and_retryable(endless) -> None:
    replies, base = endless
    error = await _request(base, "GET", idempotent=True)
    assert error.kind is ProviderErrorKind.BAD_REPLY and error.retryable
    assert "over 1048576 bytes" in error.detail
    # the client stopped reading: far less than the safety stop was ever written
    assert replies.sent < 64 * MAX_REPLY_BYTES


async def test_bounded_read_endless_submit_reply_is_an_unknown_outcome(endless) -> None:
    """A 2xx to a submit may carry a task id we could not read: never resent blindly."""
    _, base = endless
    error = await _request(base, "POST", idempotent=False)
    assert error.kind is ProviderErrorKind.UNKNOWN_OUTCOME and not error.retryable


async def test_bounded_read_oversized_error_reply_to_a_submit_is_retryable(endless) -> None:
    replies, base = endless
    replies.status = 502
    error = await _request(base, "POST", idempotent=False)
    assert error.kind is ProviderErrorKind.BAD_REPLY and error.retryable


async def test_bounded_read_declared_length_over_the_cap_is_refused_unread(endless) -> None:
    replies, base = endless
    replies.declared = 10 * MAX_REPLY_BYTES
    error = await _request(base, "GET", idempotent=True)
    assert error.kind is ProviderErrorKind.BAD_REPLY


async def test_bounded_read_a_reply_of_exactly_the_cap_is_read() -> None:
    body = json.dumps({"pad": "x" * (MAX_REPLY_BYTES - 11)}).encode()
    assert len(body) == MAX_REPLY_BYTES

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/big", handle)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        base = str(server.make_url("")).rstrip("/")
        http = ProviderHttp(session, provider="minimax", base_url=base, headers={})
        reply = await http.request("GET", "/big", idempotent=True)
    assert reply.status == 200 and reply.body == {"pad": "x" * (MAX_REPLY_BYTES - 11)}


async def test_bounded_read_adapter_query_with_an_endless_reply_is_retryable(endless) -> None:
    _, base = endless
    async with aiohttp.ClientSession() as session:
        provider = MiniMaxProvider(session, api_key="mm-test-key", base_url=base)
        with pytest.raises(ProviderError) as caught:
            await provider.query("106916112212032", {})
    assert caught.value.retryable
