"""What strangers can reach on the bot's HTTP server, and that nothing they send is a 500.

The server runs for real (aiohttp on loopback, in a thread of its own) and is
spoken to over real HTTP, so route matching, header parsing and body limits
are the ones a provider, or anyone who found ``HAILUO_PUBLIC_URL``, meets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hailuo.model.config import Secret
from hailuo.settings import load_settings
from hailuo.web.callbacks import CallbackRoutes, CallbackTokens
from hailuo.web.metrics import Metrics
from hailuo.web.server import HealthServer

RAW_KEY = b"freepik-webhook-key-0123456789ab"
FREEPIK_SECRET = Secret("whsec_" + base64.b64encode(RAW_KEY).decode())
NOW = 1_800_000_000.0


class MemoryState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_state(self, key: str) -> str | None:
        return self.values.get(key)

    async def put_state(self, key: str, value: str) -> None:
        self.values[key] = value


class ErrorRecords(logging.Handler):
    """Every ERROR-or-worse record any logger emits (aiohttp logs a 500's traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Running:
    public_port: int
    operator_port: int
    tokens: CallbackTokens
    polls: list[tuple[int, str]] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        port: int | None = None,
    ) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.public_port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """A public site with the callbacks and an operator site with health and metrics."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    tokens = CallbackTokens(MemoryState())
    run(tokens.load())
    polls: list[tuple[int, str]] = []

    async def jobs_by_state() -> dict[str, int]:
        return {"queued": 1}

    async def database_ok() -> bool:
        return True

    routes = CallbackRoutes(
        tokens,
        poll=lambda job_id, provider: polls.append((job_id, provider)),
        providers=frozenset({"minimax", "gptge", "freepik"}),
        clock=lambda: NOW,
        freepik_secret=FREEPIK_SECRET,
    )

    async def start() -> HealthServer:
        server = HealthServer(
            host="127.0.0.1",
            port=0,
            gateway_connected=lambda: True,
            database_ok=database_ok,
            jobs_by_state=jobs_by_state,
            metrics=Metrics(),
            public_mounts=[routes.mount],
            operator=("127.0.0.1", 0),
        )
        await server.start()
        return server

    server = run(start())
    assert server.bound_port is not None and server.operator_port is not None
    try:
        yield Running(server.bound_port, server.operator_port, tokens, polls)
    finally:
        run(server.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_public_side_serves_only_the_callbacks(running: Running) -> None:
    token = running.tokens.token("minimax", 7)
    assert running.request("POST", f"/callbacks/minimax/{token}", body=b"{}") == 200
    assert running.request("GET", "/metrics") == 404
    assert running.request("GET", "/healthz") == 404
    assert running.request("GET", "/") == 404


def test_operator_side_serves_health_and_metrics_not_callbacks(running: Running) -> None:
    port = running.operator_port
    assert running.request("GET", "/healthz", port=port) == 200
    assert running.request("GET", "/metrics", port=port) == 200
    token = running.tokens.token("minimax", 7)
    assert running.request("POST", f"/callbacks/minimax/{token}", body=b"{}", port=port) == 404


def test_without_a_public_url_one_loopback_site_serves_everything() -> None:
    settings = load_settings(environ={}, dotenv_path=None, require_discord=False)
    assert settings.public_url is None and settings.http_host == "127.0.0.1"
    exposed = load_settings(
        environ={"HAILUO_PUBLIC_URL": "https://bot.example.org", "HAILUO_METRICS_PORT": "9100"},
        dotenv_path=None,
        require_discord=False,
    )
    assert (exposed.metrics_host, exposed.metrics_port) == ("127.0.0.1", 9100)
    # The demo's files are fetched by the bot itself from the operator side.
    [demo] = [p for p in exposed.providers if p.name == "demo"]
    assert demo.base_url == "http://127.0.0.1:9100"


@pytest.mark.parametrize(
    "token",
    [
        "²." + "A" * 32,
        "١٢." + "A" * 32,
        "1²." + "A" * 32,
        "7." + "é" * 32,
        "9" * 19 + "." + "A" * 32,
    ],
)
def test_fuzz_seeds_malformed_tokens_are_404(running: Running, token: str) -> None:
    """The finding: ``"²".isdigit()`` is true and ``int("²")`` raises, so this was a 500."""
    assert running.request("POST", "/callbacks/minimax/" + quote(token), body=b"{}") == 404


def test_fuzz_seeds_hostile_bodies_and_headers(running: Running) -> None:
    token = running.tokens.token("freepik", 3)
    path = f"/callbacks/freepik/{token}"
    headers = {"webhook-id": "m", "webhook-timestamp": "²", "webhook-signature": "v1,x"}
    assert running.request("POST", path, body=b"{}", headers=headers) == 401
    minimax = f"/callbacks/minimax/{running.tokens.token('minimax', 3)}"
    assert running.request("POST", minimax, body=b"[" * 200_000) == 400
    assert running.request("POST", minimax, body=b"\xff\xfe{") == 400


def _signed(body: bytes, stamp: str) -> dict[str, str]:
    signed = f"m.{stamp}.".encode() + body
    sig = base64.b64encode(hmac.new(RAW_KEY, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": "m", "webhook-timestamp": stamp, "webhook-signature": f"v1,{sig}"}


header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
header_names = st.sampled_from(
    ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "x-anything"]
)
paths = st.one_of(
    st.text(max_size=60).map(lambda text: "/" + quote(text, safe="/")),
    st.text(max_size=60).map(lambda text: "/callbacks/" + quote(text, safe="/")),
    st.tuples(
        st.sampled_from(["minimax", "gptge", "freepik", "novita", "x"]), st.text(max_size=50)
    ).map(lambda pair: f"/callbacks/{pair[0]}/" + quote(pair[1], safe="")),
    st.tuples(st.sampled_from(["minimax", "freepik"]), st.integers(0, 10**20)).map(
        lambda pair: ("valid", pair[0], pair[1])
    ),
)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    ).map(lambda value: repr(value).encode()),
    st.integers(1, 50_000).map(lambda depth: b"[" * depth + b"]" * depth),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
    path=paths,
    headers=st.dictionaries(header_names, header_text, max_size=4),
    body=bodies,
    sign=st.booleans(),
)
def test_fuzz_callback_routes_never_answer_500(
    running: Running,
    method: str,
    path: str | tuple[str, str, int],
    headers: dict[str, str],
    body: bytes,
    sign: bool,
) -> None:
    """Any path, headers and body (up to the cap): never a 500, never a logged error."""
    if isinstance(path, tuple):
        _, provider, job_id = path
        path = f"/callbacks/{provider}/{running.tokens.token(provider, job_id % 10**18)}"
    if sign:
        headers = {**headers, **_signed(body, str(int(NOW)))}
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    try:
        status = running.request(method, path, body=body, headers=headers)
    finally:
        logging.getLogger().removeHandler(errors)
    assert status < 500, (status, path)
    assert errors.records == []
