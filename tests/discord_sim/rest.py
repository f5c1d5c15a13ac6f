"""HTTP plumbing: route table, request parsing, auth, fault injection, recording, JSON replies.

Every request (API, CDN or unknown) is recorded before the reply leaves, rejections included,
so a test can always see what the bot tried. Replies carry ``Content-Type: application/json``
exactly: discord.py compares the header for equality (http.py ``json_or_text``) and treats
``application/json; charset=utf-8`` as plain text.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, hdrs, web

from .models import JSON, ApiError, AuthKind, RecordedCall, RecordedPart
from .ratelimits import RateLimiter, too_many_requests

if TYPE_CHECKING:
    from .state import SimState

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
# Headers the recording drops: credentials, and transport noise that only clutters assertions.
_UNRECORDED_HEADERS = {"authorization", "host", "content-length", "accept-encoding", "connection"}


@dataclass
class Reply:
    """A handler's answer; ``body=None`` means an empty 204-style reply."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> web.Response:
        if self.body is None:
            return web.Response(status=self.status, headers=self.headers)
        headers = {**self.headers, hdrs.CONTENT_TYPE: "application/json"}
        return web.Response(
            status=self.status, body=json.dumps(self.body).encode(), headers=headers
        )


@dataclass
class ApiRequest:
    """A parsed API request as handlers see it."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    parts: list[RecordedPart]
    call: RecordedCall

    def snowflake(self, name: str) -> int:
        """A numeric path parameter; a malformed id is Discord's 404 for that resource kind."""
        value = self.params[name]
        if not value.isdigit():
            raise ApiError(404, 0, "404: Not Found")
        return int(value)

    def body(self) -> JSON:
        """The JSON object body (or multipart ``payload_json``); ``{}`` when there is none."""
        return self.json if isinstance(self.json, dict) else {}


Handler = Callable[[ApiRequest], Awaitable[Reply]]


@dataclass
class RouteSpec:
    method: str
    template: str
    handler: Handler
    bot_auth: bool
    regex: re.Pattern[str]


class Router:
    """Discord-style templates (``/channels/{channel_id}``) matched against API-relative paths."""

    def __init__(self) -> None:
        self._routes: list[RouteSpec] = []

    def add(self, method: str, template: str, handler: Handler, *, bot_auth: bool = True) -> None:
        """``bot_auth=False``: interaction/webhook routes, authorised by the token in the URL."""
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        regex = re.compile(f"^{pattern}$")
        self._routes.append(RouteSpec(method, template, handler, bot_auth, regex))

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        for spec in self._routes:
            if spec.method == method and (found := spec.regex.match(path)):
                return spec, found.groupdict()
        return None


@dataclass
class Fault:
    """An injected failure: the next ``remaining`` matching requests get this reply."""

    method: str
    pattern: re.Pattern[str]
    reply: Reply
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0 and self.method in ("*", method) and bool(self.pattern.search(path))
        )


def fault_reply(status: int, body: JSON | None, headers: dict[str, str] | None) -> Reply:
    """Fill in what discord.py needs to treat the fault as Discord's, not Cloudflare's.

    A 429 without ``Via`` or with a non-JSON body is taken for a Cloudflare ban and raised at
    once (http.py), so 429s get ``Via`` and a ``retry_after`` unless the test overrides them.
    """
    merged_headers = dict(headers or {})
    if status == 429:
        merged_headers.setdefault("Via", "1.1 google")
        merged_headers.setdefault("X-RateLimit-Scope", "user")
        merged_headers.setdefault("Retry-After", "1")
        default: JSON = {
            "message": "You are being rate limited.",
            "retry_after": 0.05,
            "global": False,
        }
    else:
        default = {"message": f"{status}: simulated failure", "code": 0}
    return Reply(status, {**default, **(body or {})}, merged_headers)


async def read_body(request: web.Request) -> tuple[Any, list[RecordedPart]]:
    """JSON body, or multipart parts with ``payload_json`` parsed (discord.py's two encodings)."""
    if request.content_type.startswith("multipart/"):
        parts: list[RecordedPart] = []
        payload: Any = None
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = await part.read(decode=False)
            parts.append(
                RecordedPart(
                    part.name, part.filename, part.headers.get(hdrs.CONTENT_TYPE), bytes(data)
                )
            )
            if part.name == "payload_json":
                payload = json.loads(data)
        return payload, parts
    raw = await request.read()
    if raw and request.content_type == "application/json":
        return json.loads(raw), []
    return None, []


def auth_kind(request: web.Request, token: str) -> AuthKind:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return "none"
    return "bot" if header == f"Bot {token}" else "invalid"


class RestServer:
    """Turns aiohttp requests into recorded :class:`ApiRequest` handler calls."""

    def __init__(self, sim: SimState, router: Router, limiter: RateLimiter) -> None:
        self.sim = sim
        self.router = router
        self.limiter = limiter
        self.faults: list[Fault] = []

    def _new_call(
        self, request: web.Request, path: str, body: Any, parts: list[RecordedPart]
    ) -> RecordedCall:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _UNRECORDED_HEADERS}
        return RecordedCall(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            parts=parts,
            headers=headers,
            auth=auth_kind(request, self.sim.token),
            time=self.sim.clock(),
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        """Entry point for everything under ``/api/v10``."""
        path = request.path[len(API_PREFIX) :] or "/"
        try:
            body, parts = await read_body(request)
        except ValueError as exc:  # malformed JSON or multipart: Discord's 400, never a 5xx
            call = self._new_call(request, path, None, [])
            return await self._finish(
                call, Reply(400, {"message": f"400: Bad Request ({exc})", "code": 50109})
            )
        call = self._new_call(request, path, body, parts)
        reply = await self._answer(request.method, path, call)
        return await self._finish(call, reply)

    async def handle_other(self, request: web.Request) -> web.StreamResponse:
        """Anything outside the API and the CDN: 404, but recorded like the rest."""
        call = self._new_call(request, request.path, None, [])
        return await self._finish(call, Reply(404, {"message": "404: Not Found", "code": 0}))

    async def handle_cdn(self, request: web.Request) -> web.StreamResponse:
        """Serve :meth:`DiscordSimulator.add_cdn_file` and uploaded attachments."""
        call = self._new_call(request, request.path, None, [])
        call.route = "GET /cdn/{file}"
        fault = self._take_fault("GET", request.path)
        if fault is not None:
            return await self._finish(call, fault)
        stored = self.sim.cdn_files.get(request.path)
        if stored is None:
            call.status = 404
            await self.sim.record(call)
            return web.Response(status=404, text="Not Found")
        data, content_type = stored
        call.status = 200
        await self.sim.record(call)
        if self.sim.cdn_gate is not None:
            await self.sim.cdn_gate.wait()
        if request.path not in self.sim.cdn_extra:
            return web.Response(body=data, content_type=content_type or "application/octet-stream")
        return await self._stream_cdn(request, content_type)

    async def _stream_cdn(
        self, request: web.Request, content_type: str | None
    ) -> web.StreamResponse:
        """Stream a file with ``extra`` zero bytes, made as they are sent, counting what went."""
        stored, _ = self.sim.cdn_files[request.path]
        extra = self.sim.cdn_extra[request.path]
        resp = web.StreamResponse()
        resp.content_type = content_type or "application/octet-stream"
        await resp.prepare(request)
        sent = 0
        zeros = bytes(1024 * 1024)
        try:
            await resp.write(stored)
            sent += len(stored)
            while sent < len(stored) + extra:
                piece = zeros[: len(stored) + extra - sent]
                await resp.write(piece)
                sent += len(piece)
                self.sim.cdn_sent[request.path] = sent
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the reader hung up: what it read is counted
        self.sim.cdn_sent[request.path] = sent
        return resp

    async def _answer(self, method: str, path: str, call: RecordedCall) -> Reply:
        found = self.router.match(method, path)
        if found is None:
            return Reply(404, {"message": "404: Not Found", "code": 0})
        spec, params = found
        call.route = f"{method} {spec.template}"
        request = ApiRequest(method, path, params, call.query, call.json, call.parts, call)
        if spec.bot_auth and call.auth != "bot":
            return Reply(401, {"message": "401: Unauthorized", "code": 0})
        # Interaction routes are not bound to the global limit (rate-limits.mdx).
        verdict = self.limiter.check(call.route, params, exempt_global=not spec.bot_auth)
        if not verdict.allowed:
            body, headers = too_many_requests(verdict)
            return Reply(429, body, headers)
        try:
            fault = self._take_fault(method, path)
            reply = fault if fault is not None else await spec.handler(request)
        except ApiError as err:
            reply = Reply(err.status, err.body(), err.headers)
        except Exception as exc:  # a simulator bug must not look like a retryable Discord 5xx
            log.exception("simulator handler failed for %s %s", method, path)
            self.sim.internal_errors.append("".join(traceback.format_exception(exc)))
            reply = Reply(400, {"message": f"simulator bug: {exc!r}", "code": -1})
        # Every answer says where its bucket stands, errors and injected faults included.
        return Reply(reply.status, reply.body, {**verdict.headers, **reply.headers})

    def _take_fault(self, method: str, path: str) -> Reply | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                return fault.reply
        return None

    async def _finish(self, call: RecordedCall, reply: Reply) -> web.StreamResponse:
        call.status = reply.status
        call.response = reply.body
        call.response_headers = dict(reply.headers)
        if isinstance(reply.body, dict) and isinstance(reply.body.get("code"), int):
            call.code = reply.body["code"]
        await self.sim.record(call)
        return reply.to_response()
