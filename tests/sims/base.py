"""Provider-agnostic parts of the loopback provider simulators.

Every provider simulator (MiniMax, Freepik, Novita, odkkk, gpt.ge) needs the same things:
a real HTTP server on 127.0.0.1 that the real adapter code talks to, a record of every
request, a per-endpoint queue of injected faults, JSON-Schema checks of request bodies
taken from the providers' own docs, and a "CDN" that serves result files from signed,
expiring URLs. They live here so a provider module only writes its routes and replies.

Faults are data (:class:`Fault`), queued per endpoint and consumed one per request, so a
test states the whole misbehaviour up front (``inject("query", "http_503", times=2)``)
and then drives the client normally. For weather rather than a script, :meth:`SimServer.chaos`
fails a seeded share of every request at random (HTTP 500s and the provider's own
rate-limit answers) on every endpoint that takes faults. Nothing here sleeps: a hanging
handler awaits an event that only :meth:`SimServer.close` sets, so the client's own timeout
ends the call.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import random
import re
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web
from jsonschema import Draft202012Validator

from hailuo.model.camera import COMMANDS

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Clock = Callable[[], float]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Fault kinds this module can answer by itself; providers add their own kinds.
GENERIC_KINDS = frozenset({"http", "hang", "malformed_json", "drop", "expired"})


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it; ``Authorization`` is left out on purpose.

    Keeping the key out means a test can print ``sim.requests`` in a failure message
    without leaking it, and still check every other header the client sent.
    """

    endpoint: str  # route name ("submit", "download", ...), "" when no route matched
    method: str
    path: str
    query: dict[str, str]
    json: Any  # parsed body, or None when empty / not JSON
    body: bytes
    headers: dict[str, str]


_RECORD_KEY = web.RequestKey("sim.recorded", RecordedRequest)


# ---------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. ``kind`` picks the behaviour, the rest parametrises it.

    Generic kinds (answered by :class:`SimServer`):
      ``http``            reply ``status`` with JSON ``body`` and ``headers``
      ``hang``            never answer until the simulator closes
      ``malformed_json``  HTTP 200, JSON content type, truncated body
      ``drop``            close the connection without any answer
      ``expired``         HTTP 403 like an expired OSS/S3 signed URL (downloads)
    Providers define more kinds (e.g. MiniMax ``api_error``) and interpret ``code``/``msg``.
    """

    kind: str
    name: str = ""
    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    code: int = 0
    msg: str = ""

    @classmethod
    def http(
        cls, status: int, body: Any = None, *, retry_after: int | None = None, name: str = ""
    ) -> Fault:
        """An HTTP error status with a JSON body (and ``Retry-After`` when given)."""
        headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
        return cls("http", name or f"http_{status}", status=status, body=body, headers=headers)


HANG = Fault("hang", "hang")
MALFORMED_JSON = Fault("malformed_json", "malformed_json")
DROP = Fault("drop", "drop")
EXPIRED_URL = Fault("expired", "expired_url")


class FaultQueue:
    """FIFO of faults per endpoint; each request to the endpoint consumes at most one."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        self._queues: dict[str, deque[Fault]] = {name: deque() for name in endpoints}

    def push(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint``."""
        if endpoint not in self._queues:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(self._queues)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._queues[endpoint].extend([fault] * times)

    def pop(self, endpoint: str) -> Fault | None:
        """The fault for this request, or None to behave normally."""
        queue = self._queues[endpoint]
        return queue.popleft() if queue else None

    def pending(self, endpoint: str | None = None) -> int:
        """Faults not yet consumed; a test can assert 0 to prove its faults were hit."""
        if endpoint is not None:
            return len(self._queues[endpoint])
        return sum(len(q) for q in self._queues.values())


@dataclass
class Chaos:
    """Random faults on every request: ``errors`` of them HTTP 500, ``rate_limits`` of them
    the provider's rate-limit answers, drawn from a seeded generator."""

    rng: random.Random
    errors: float
    rate_limits: float
    #: How many faults it answered: ``"errors"``, ``"rate_limits"``, and by fault name.
    answered: Counter[str]

    def draw(self, errors: list[Fault], rate_limits: list[Fault]) -> Fault | None:
        roll = self.rng.random()
        if roll < self.errors and errors:
            return self._answer("errors", self.rng.choice(errors))
        if roll < self.errors + self.rate_limits and rate_limits:
            return self._answer("rate_limits", self.rng.choice(rate_limits))
        return None

    def _answer(self, category: str, fault: Fault) -> Fault:
        self.answered[category] += 1
        self.answered[fault.name or fault.kind] += 1
        return fault


# ---------------------------------------------------------------------- JSON schemas


@functools.cache
def schema_validator(schema_file: str) -> Draft202012Validator:
    """Load (once) and self-check a schema from ``tests/schemas``."""
    schema = json.loads((SCHEMA_DIR / schema_file).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(schema_file: str, instance: Any) -> list[str]:
    """Human-readable schema violations of ``instance``, empty when it conforms."""
    errors = schema_validator(schema_file).iter_errors(instance)
    out = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        out.append(f"{schema_file}: {where}: {error.message}")
    return out


# ------------------------------------------------------------------------------- CDN


@dataclass(frozen=True)
class Blob:
    """A file served by the simulator's CDN route."""

    data: bytes
    filename: str
    content_type: str


_OSS_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message>"
    "<RequestId>{request_id}</RequestId></Error>"
)


def oss_error(status: int, code: str, message: str) -> web.Response:
    """An error shaped like Aliyun OSS / S3 (XML), which is what a signed CDN URL returns."""
    text = _OSS_ERROR.format(code=code, message=message, request_id=uuid.uuid4().hex.upper())
    return web.Response(status=status, text=text, content_type="application/xml")


# ---------------------------------------------------------------------------- server


class SimServer:
    """Base of a loopback provider simulator: lifecycle, recorder, faults, CDN.

    Subclasses set ``ENDPOINTS`` (route names that accept faults, "download" included),
    ``FAULTS`` (named faults for :meth:`inject`), ``EXTRA_KINDS`` (provider fault kinds
    allowed per endpoint) and implement :meth:`add_routes`.
    """

    ENDPOINTS: ClassVar[tuple[str, ...]] = ("download",)
    FAULTS: ClassVar[Mapping[str, Fault]] = {
        "hang": HANG,
        "malformed_json": MALFORMED_JSON,
        "drop": DROP,
        "expired_url": EXPIRED_URL,
    }
    EXTRA_KINDS: ClassVar[Mapping[str, frozenset[str]]] = {}
    #: Request headers that carry the key (lower case): never recorded, and watched for on
    #: the CDN. Providers with their own key header (Freepik) add it here.
    SECRET_HEADERS: ClassVar[frozenset[str]] = frozenset({"authorization"})
    #: Names in ``FAULTS`` that :meth:`chaos` draws from, where the endpoint takes their kind:
    #: server errors, and every way a provider says "too many requests".
    CHAOS_ERRORS: ClassVar[tuple[str, ...]] = ("http_500",)
    CHAOS_RATE_LIMITS: ClassVar[tuple[str, ...]] = ("http_429", "rate_limit", "http_503_rate")

    def __init__(self, *, clock: Clock = time.time, url_ttl: float = 9 * 3600) -> None:
        self.clock = clock
        self.url_ttl = url_ttl
        self.base_url = ""
        self.faults = FaultQueue(self.ENDPOINTS)
        #: Every request received, in order (Authorization header removed).
        self.requests: list[RecordedRequest] = []
        #: Client contract violations (schema, content type...); the suite asserts [].
        self.violations: list[str] = []
        #: Authorization values sent to the CDN; must stay []: the key never leaves.
        self.download_auth_headers_seen: list[str] = []
        #: Successful file downloads served.
        self.downloads = 0
        self._blobs: dict[str, Blob] = {}
        self._signing_key = secrets.token_bytes(16)
        self._runner: web.AppRunner | None = None
        self._released: asyncio.Event | None = None
        self._chaos: Chaos | None = None

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests for one route name."""
        return [r for r in self.requests if r.endpoint == endpoint]

    # -- lifecycle

    async def start(self) -> Self:
        """Bind an ephemeral port on 127.0.0.1 and serve; sets ``base_url``."""
        self._released = asyncio.Event()
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/download/{token}/{filename}", self._download, name="download")
        self.add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        """Release hanging handlers first, so shutdown never waits on them."""
        if self._released is not None:
            self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the provider's routes (each with ``name=`` = its endpoint)."""
        raise NotImplementedError

    # -- faults

    def inject(self, endpoint: str, fault: str | Fault, times: int = 1) -> None:
        """Make the next ``times`` requests to ``endpoint`` misbehave as ``fault``.

        ``fault`` is a name from ``FAULTS`` or a :class:`Fault`. A kind that means nothing
        on that endpoint is refused here, so a typo cannot silently test nothing.
        """
        resolved = self.FAULTS.get(fault) if isinstance(fault, str) else fault
        if resolved is None:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(self.FAULTS)}")
        if resolved.kind not in self._kinds_for(endpoint):
            raise ValueError(f"fault {resolved.name or resolved.kind!r} cannot apply to {endpoint}")
        self.faults.push(endpoint, resolved, times)

    def chaos(self, *, seed: int, errors: float = 0.3, rate_limits: float = 0.1) -> Counter[str]:
        """Fail a share of every request from now on, at random but reproducibly.

        Each request to an endpoint that takes faults (submit, query, download...) is
        answered with an HTTP 500 with probability ``errors`` and with one of the
        provider's rate-limit answers (HTTP 429, MiniMax's ``base_resp`` 1002, Freepik's
        503 "Rate limit exceeded") with probability ``rate_limits``, before the request
        reaches the route, so a failed submit never creates a task. Faults queued with
        :meth:`inject` still apply to the requests chaos lets through. Returns the counter
        of the faults answered (``"errors"``, ``"rate_limits"``, and by fault name).
        """
        self._chaos = Chaos(random.Random(seed), errors, rate_limits, Counter())
        return self._chaos.answered

    def _chaos_fault(self, endpoint: str) -> Fault | None:
        if self._chaos is None or endpoint not in self.ENDPOINTS:
            return None
        kinds = self._kinds_for(endpoint)

        def usable(names: tuple[str, ...]) -> list[Fault]:
            return [
                self.FAULTS[n] for n in names if n in self.FAULTS and self.FAULTS[n].kind in kinds
            ]

        errors = usable(self.CHAOS_ERRORS) or [Fault.http(500, {"message": "internal error"})]
        return self._chaos.draw(errors, usable(self.CHAOS_RATE_LIMITS))

    async def _answer_fault(
        self, request: web.Request, fault: Fault, endpoint: str
    ) -> web.StreamResponse:
        """Reply with a fault; providers with their own kinds override this."""
        return await self.answer_generic(request, fault)

    def _kinds_for(self, endpoint: str) -> frozenset[str]:
        """Fault kinds meaningful on ``endpoint``; an expired signature is CDN-only."""
        if endpoint == "download":
            return GENERIC_KINDS
        return (GENERIC_KINDS - {"expired"}) | self.EXTRA_KINDS.get(endpoint, frozenset())

    async def answer_generic(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        """Answer with one of the generic fault kinds."""
        if fault.kind == "http":
            return web.json_response(fault.body, status=fault.status, headers=dict(fault.headers))
        if fault.kind == "hang":
            assert self._released is not None
            await self._released.wait()
            return web.json_response({"message": "simulator closed"}, status=503)
        if fault.kind == "malformed_json":
            return web.Response(
                body=b'{"base_resp": {"status_code": 0, "sta', content_type="application/json"
            )
        if fault.kind == "drop":
            return drop_connection(request)
        if fault.kind == "expired":
            return oss_error(403, "AccessDenied", "Request has expired.")
        raise ValueError(f"not a generic fault kind: {fault.kind!r}")

    def violate(self, endpoint: str, problems: Iterable[str]) -> None:
        """Record client contract violations (the suite asserts there are none)."""
        self.violations.extend(f"{endpoint}: {p}" for p in problems)

    # -- CDN

    def publish(
        self, data: bytes, filename: str = "output.mp4", content_type: str = "video/mp4"
    ) -> str:
        """Store a file for download; returns its opaque token (a UUID, like MiniMax paths)."""
        token = str(uuid.uuid4())
        self._blobs[token] = Blob(data, filename, content_type)
        return token

    def signed_url(self, token: str, ttl: float | None = None) -> str:
        """A fresh signed URL for a published file, valid ``ttl`` s by ``clock`` (OSS style)."""
        expires = int(self.clock() + (self.url_ttl if ttl is None else ttl))
        blob = self._blobs[token]
        sig = self._sign(token, expires)
        return f"{self.base_url}/download/{token}/{blob.filename}?Expires={expires}&Signature={sig}"

    def _sign(self, token: str, expires: int) -> str:
        return hmac.new(
            self._signing_key, f"{token}:{expires}".encode(), hashlib.sha256
        ).hexdigest()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """Serve a published file the way a signed CDN URL does; note any leaked key."""
        for name, value in request.headers.items():
            if name.lower() in self.SECRET_HEADERS:
                self.download_auth_headers_seen.append(value)
        if fault := self.faults.pop("download"):
            return await self.answer_generic(request, fault)
        blob = self._blobs.get(request.match_info["token"])
        if blob is None or request.match_info["filename"] != blob.filename:
            return oss_error(404, "NoSuchKey", "The specified key does not exist.")
        if denied := self._check_signature(request):
            return denied
        self.downloads += 1
        return web.Response(body=blob.data, content_type=blob.content_type)

    def _check_signature(self, request: web.Request) -> web.Response | None:
        """403 unless Expires/Signature are intact and not past ``clock``."""
        try:
            expires = int(request.query["Expires"])
            sig = request.query["Signature"]
        except (KeyError, ValueError):
            return oss_error(403, "AccessDenied", "Missing or bad Expires/Signature.")
        if not hmac.compare_digest(sig, self._sign(request.match_info["token"], expires)):
            return oss_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
        if self.clock() > expires:
            return oss_error(403, "AccessDenied", "Request has expired.")
        return None

    # -- recorder

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record every request before its handler runs (even ones that will fault)."""
        body = await request.read()
        record = RecordedRequest(
            endpoint=request.match_info.route.name or "",
            method=request.method,
            path=request.path,
            query=dict(request.query),
            json=_parse_json(body),
            body=body,
            headers={
                k: v for k, v in request.headers.items() if k.lower() not in self.SECRET_HEADERS
            },
        )
        self.requests.append(record)
        request[_RECORD_KEY] = record
        fault = self._chaos_fault(record.endpoint)
        if fault is not None:
            return await self._answer_fault(request, fault, record.endpoint)
        return await handler(request)


def recorded(request: web.Request) -> RecordedRequest:
    """The record of this request (its parsed JSON body lives there, read once)."""
    return request[_RECORD_KEY]


def _parse_json(body: bytes) -> Any:
    """The parsed JSON body, or None when empty or not JSON (the schema check reports it)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def drop_connection(request: web.Request) -> web.Response:
    """Close the socket without answering: the client sees a disconnect, never a status.

    aiohttp then fails to write the returned response to the closed transport and
    swallows that ConnectionError, which is exactly the silence we want.
    """
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


# ------------------------------------------------------------- request-check helpers

#: Leading bytes of the image formats the providers name (JPEG, PNG, WebP's RIFF....WEBP).
_IMAGE_MAGIC = {"jpeg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",), "webp": (b"RIFF",)}


def json_body_problems(request: web.Request, body: Any) -> list[str]:
    """A JSON object sent as ``application/json``, or what is wrong with it."""
    if request.content_type != "application/json":
        return [f"Content-Type is {request.content_type!r}, must be application/json"]
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    return []


def image_ref_problems(
    key: str,
    ref: Any,
    *,
    formats: Iterable[str] = ("jpeg", "png", "webp"),
    data_url: bool = True,
    raw_base64: bool = False,
) -> list[str]:
    """Check one image reference: an http(s) URL, a ``data:image/...;base64,`` URL (when
    ``data_url``) or bare base64 (when ``raw_base64``) whose bytes are a listed format."""
    if not isinstance(ref, str):
        return [f"{key} is not a string"]
    if ref.startswith(("https://", "http://")):
        return []
    allowed = tuple(formats)
    payload = None
    if ref.startswith("data:"):
        if not data_url:
            return [f"{key} is a data: URL; this provider takes a URL or bare base64"]
        head, _, payload = ref.partition(",")
        mime = head.removeprefix("data:").removesuffix(";base64")
        if not head.endswith(";base64") or mime.removeprefix("image/") not in (
            *allowed,
            *(("jpg",) if "jpeg" in allowed else ()),
        ):
            return [f"{key} data URL type {head!r} is not one of {allowed}"]
    elif raw_base64:
        payload = ref
    else:
        return [f"{key} is neither an http(s) URL nor a data:image/... base64 URL"]
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        return [f"{key} is not valid base64"]
    if not any(data.startswith(m) for f in allowed for m in _IMAGE_MAGIC.get(f, ())):
        return [f"{key} bytes are not {'/'.join(allowed)}"]
    if data.startswith(b"RIFF") and data[8:12] != b"WEBP":
        return [f"{key} is a RIFF file but not WebP"]
    return []


def camera_spelling_problems(prompt: Any, spelling: str) -> list[str]:
    """Camera commands in the spelling this provider does not read (providers.md §5b)."""
    if not isinstance(prompt, str):
        return []
    wrong = {c.chinese if spelling == "english" else c.english.lower() for c in COMMANDS}
    problems = []
    for group in re.findall(r"\[([^\[\]]*)\]", prompt):
        for item in re.split(r"[,，、]", group):
            word = item.strip() if spelling == "english" else item.strip().lower()
            if word in wrong:
                problems.append(f"camera command {item.strip()!r} is not in {spelling} spelling")
    return problems
