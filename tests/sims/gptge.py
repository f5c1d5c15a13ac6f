"""Loopback simulator of api.gpt.ge (V-API), a MiniMax pass-through (providers.md §5, seed 004).

Routes (``base_url`` is like ``https://api.gpt.ge``):
  POST /task/minimax/v1/video_generation          submit (MiniMax body, Chinese camera words)
  GET  /task/{task_id}                            documented query; ``query_shape`` picks the
                                                  native MiniMax reply or the wrapper of the
                                                  page's field table; ``task_route=False``
                                                  makes it 404 (the path is not settled)
  GET  /task/minimax/v1/query/video_generation    the MiniMax-like path, native shape [UNVERIFIED]
  GET  /task/minimax/v1/files/retrieve?file_id=   ``file.file_id`` a NUMBER, like MiniMax
  GET  /download/<uuid>/output.mp4?...            the "CDN", no key

MiniMax's ``base_resp`` codes pass through (1002/1008/1026/1027/2013...). The gateway's own
errors (bad key, quota, 429) are [UNKNOWN]; they come OpenAI-style here,
``{"error": {"message", "type", "code"}}``, as on many relays of this kind. In the wrapper,
the top-level ``status`` is the gateway's *integer* return code and the task's word is in
``data.status`` (the field table was copied from other vendors' pages on the same site).
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiohttp import web

from tests import media
from tests.sims.base import (
    DROP,
    EXPIRED_URL,
    HANG,
    MALFORMED_JSON,
    Clock,
    Fault,
    SimServer,
    camera_spelling_problems,
    drop_connection,
    json_body_problems,
    recorded,
    schema_errors,
)
from tests.sims.minimax import api_error, base_resp, progress_status
from tests.sims.minimax import rule_problems as minimax_rules

SUBMIT, QUERY, QUERY_NATIVE, RETRIEVE, DOWNLOAD = (
    "submit",
    "query",
    "query_native",
    "retrieve",
    "download",
)
SCHEMA = "gptge.json"
TERMINAL = ("Success", "Fail")
QueryShape = Literal["native", "wrapper"]


def gateway_error(message: str, etype: str, code: str = "") -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "code": code}}


def http_error(status: int, message: str, etype: str, code: str = "", **kw: Any) -> Fault:
    return Fault.http(status, gateway_error(message, etype, code), **kw)


FAULTS: dict[str, Fault] = {
    "http_500": http_error(500, "internal error", "upstream_error"),
    "http_502": http_error(502, "bad gateway", "upstream_error"),
    "http_503": http_error(503, "no available channel", "new_api_error"),
    "http_429": http_error(
        429, "rate limit", "rate_limit_error", "rate_limit_exceeded", retry_after=2
    ),
    "gateway_no_balance": http_error(
        403,
        "user quota is not enough",
        "new_api_error",
        "insufficient_user_quota",
        name="gateway_no_balance",
    ),
    "gateway_bad_key": http_error(
        401, "invalid token", "new_api_error", "invalid_api_key", name="gateway_bad_key"
    ),
    "hang": HANG,
    "malformed_json": MALFORMED_JSON,
    "drop": DROP,
    "expired_url": EXPIRED_URL,
    "rate_limit": api_error(1002, "rate limit exceeded(RPM)", "rate_limit"),
    "no_balance": api_error(1008, "insufficient balance", "no_balance"),
    "sensitive_prompt": api_error(1026, "input new_sensitive", "sensitive_prompt"),
    "invalid_params": api_error(2013, "invalid params", "invalid_params"),
    "generation_failed": Fault(
        "task_fail", "generation_failed", code=1027, msg="output new_sensitive"
    ),
    "accept_then_drop": Fault("accept_then_drop", "accept_then_drop"),
}


@dataclass
class SimTask:
    task_id: str
    body: dict[str, Any]
    polls_until_done: int | None
    video: bytes
    status: str = "Preparing"
    polls: int = 0
    file_id: int | None = None
    blob_token: str | None = None
    error: tuple[int, str] = (0, "success")


class GptGeSimulator(SimServer):
    """gpt.ge on loopback. Set ``query_shape`` / ``task_route`` to pick the query behaviour."""

    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, QUERY_NATIVE, RETRIEVE, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        SUBMIT: frozenset({"api_error", "accept_then_drop"}),
        QUERY: frozenset({"api_error", "task_fail"}),
        QUERY_NATIVE: frozenset({"api_error", "task_fail"}),
        RETRIEVE: frozenset({"api_error"}),
    }

    def __init__(
        self,
        *,
        api_key: str = "ge-test-key",
        video: bytes | None = None,
        polls_until_done: int | None = 2,
        query_shape: QueryShape = "native",
        task_route: bool = True,
        clock: Clock = time.time,
        url_ttl: float = 9 * 3600,
    ) -> None:
        super().__init__(clock=clock, url_ttl=url_ttl)
        self.api_key = api_key
        self.video = media.make_mp4() if video is None else video
        self.polls_until_done = polls_until_done
        self.query_shape: QueryShape = query_shape
        self.task_route = task_route
        self.submits: list[dict[str, Any]] = []
        self.tasks: dict[str, SimTask] = {}
        self._files: dict[int, SimTask] = {}
        self._task_ids = itertools.count(314052875571396, 7919)
        self._file_ids = itertools.count(314053136425242, 104729)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/task/minimax/v1/video_generation", self._submit, name=SUBMIT)
        router.add_get(
            "/task/minimax/v1/query/video_generation", self._query_native, name=QUERY_NATIVE
        )
        router.add_get("/task/minimax/v1/files/retrieve", self._retrieve, name=RETRIEVE)
        router.add_get("/task/{task_id}", self._query, name=QUERY)

    # -- test controls

    def complete(self, task_id: str) -> SimTask:
        task = self.tasks[task_id]
        if task.status not in TERMINAL:
            task.status = "Success"
            task.file_id = next(self._file_ids)
            task.blob_token = self.publish(task.video)
            self._files[task.file_id] = task
        return task

    def fail(self, task_id: str, code: int = 1027, msg: str = "output new_sensitive") -> SimTask:
        task = self.tasks[task_id]
        if task.status not in TERMINAL:
            task.status, task.error = "Fail", (code, msg)
        return task

    def callback_body(self, task_id: str) -> dict[str, Any]:
        """A MiniMax-style callback: the native shape with lowercase status words."""
        body = _native(self.tasks[task_id])
        body["status"] = {"Success": "success", "Fail": "failed"}.get(body["status"], "processing")
        return body

    # -- handlers

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = recorded(request).json
        problems = json_body_problems(request, body)
        if not problems:
            problems = (
                schema_errors(SCHEMA, body)
                + minimax_rules(body)
                + camera_spelling_problems(body.get("prompt"), "chinese")
            )
        self.violate(SUBMIT, problems)
        fault = self.faults.pop(SUBMIT)
        if fault is not None and fault.kind != "accept_then_drop":
            return await self._answer(request, fault, {"task_id": ""})
        if denied := self._check_auth(request):
            return denied
        if problems:
            return _reply({"task_id": ""}, 2013, f"invalid params, {problems[0]}")
        task = SimTask(str(next(self._task_ids)), body, self.polls_until_done, self.video)
        self.tasks[task.task_id] = task
        self.submits.append(body)
        if fault is not None:
            return drop_connection(request)
        return _reply({"task_id": task.task_id})

    async def _query(self, request: web.Request) -> web.StreamResponse:
        if not self.task_route:
            path = request.path
            return web.json_response(
                gateway_error(f"Invalid URL (GET {path})", "invalid_request_error"), status=404
            )
        return await self._answer_query(request, QUERY, request.match_info["task_id"])

    async def _query_native(self, request: web.Request) -> web.StreamResponse:
        return await self._answer_query(request, QUERY_NATIVE, request.query.get("task_id", ""))

    async def _answer_query(
        self, request: web.Request, endpoint: str, task_id: str
    ) -> web.StreamResponse:
        fault = self.faults.pop(endpoint)
        if fault is not None and fault.kind != "task_fail":
            return await self._answer(request, fault, {"task_id": "", "status": ""})
        if denied := self._check_auth(request):
            return denied
        task = self.tasks.get(task_id)
        if task is None:
            return _reply({"task_id": "", "status": ""}, 2013, "invalid params, task not found")
        if fault is not None:
            self.fail(task.task_id, fault.code, fault.msg)
        self._advance(task)
        if endpoint == QUERY and self.query_shape == "wrapper":
            return web.json_response(self._wrapper(task))
        return web.json_response(_native(task))

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        if fault := self.faults.pop(RETRIEVE):
            return await self._answer(request, fault, {})
        if denied := self._check_auth(request):
            return denied
        try:
            task = self._files.get(int(request.query.get("file_id", "")))
        except ValueError:
            task = None
        if task is None or task.blob_token is None or task.file_id is None:
            return _reply({}, 2013, "invalid params, file not found")
        file = {
            "file_id": task.file_id,
            "bytes": len(task.video),
            "created_at": int(self.clock()),
            "filename": "output.mp4",
            "purpose": "video_generation",
            "download_url": self.signed_url(task.blob_token),
        }
        return _reply({"file": file})

    # -- helpers

    def _wrapper(self, task: SimTask) -> dict[str, Any]:
        """The field table's shape: ``code``, integer ``status``, ``data.status/video_url``."""
        done = task.status == "Success" and task.blob_token is not None
        return {
            "code": 10000,
            "status": 10000,
            "message": "success",
            "request_id": uuid.uuid4().hex,
            "time_elapsed": "15ms",
            "data": {
                "status": task.status,
                "resp_data": "",
                "video_url": self.signed_url(task.blob_token) if done and task.blob_token else "",
                "image_urls": None,
                "binary_data_base64": [],
            },
        }

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") != self.api_key:
            body = gateway_error("invalid token", "new_api_error", "invalid_api_key")
            return web.json_response(body, status=401)
        return None

    def _advance(self, task: SimTask) -> None:
        if task.status in TERMINAL:
            return
        task.polls += 1
        if task.polls_until_done is not None and task.polls > task.polls_until_done:
            self.complete(task.task_id)
        else:
            task.status = progress_status(task.polls, task.polls_until_done)

    async def _answer(
        self, request: web.Request, fault: Fault, shape: dict[str, Any]
    ) -> web.StreamResponse:
        if fault.kind == "api_error":
            return _reply(shape, fault.code, fault.msg)
        return await self.answer_generic(request, fault)


def _reply(fields: dict[str, Any], code: int = 0, msg: str = "success") -> web.Response:
    return web.json_response({**fields, **base_resp(code, msg)})


def _native(task: SimTask) -> dict[str, Any]:
    done = task.status == "Success"
    code, msg = task.error if task.status == "Fail" else (0, "success")
    return {
        "task_id": task.task_id,
        "status": task.status,
        "file_id": str(task.file_id) if done else "",
        "video_width": 1366 if done else 0,
        "video_height": 768 if done else 0,
        **base_resp(code, msg),
    }
