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

Being a pass-through, the simulator is :class:`~tests.sims.minimax.MiniMaxSimulator` with
gpt.ge's paths, key check, request checks and query shapes.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from aiohttp import web

from tests.sims.base import Fault, camera_spelling_problems, json_body_problems, schema_errors
from tests.sims.minimax import (
    BASE_RESP_FAULTS,
    NOMINAL_SIZE,
    MiniMaxSimulator,
    SimTask,
    query_body,
    rule_problems,
)
from tests.sims.tasks import COMMON_FAULTS

SUBMIT, QUERY, QUERY_NATIVE, RETRIEVE, DOWNLOAD = (
    "submit",
    "query",
    "query_native",
    "retrieve",
    "download",
)
SCHEMA = "gptge.json"
#: The size every finished task reports here, whatever its resolution.
REPORTED_SIZE = NOMINAL_SIZE["768P"]
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
    **COMMON_FAULTS,
    **BASE_RESP_FAULTS,
}


class GptGeSimulator(MiniMaxSimulator):
    """gpt.ge on loopback. Set ``query_shape`` / ``task_route`` to pick the query behaviour."""

    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, QUERY_NATIVE, RETRIEVE, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        **MiniMaxSimulator.EXTRA_KINDS,
        QUERY_NATIVE: MiniMaxSimulator.EXTRA_KINDS[QUERY],
    }
    TASK_IDS: ClassVar[tuple[int, int]] = (314052875571396, 7919)
    FILE_IDS: ClassVar[tuple[int, int]] = (314053136425242, 104729)
    API_KEY = "ge-test-key"

    def __init__(
        self, *, query_shape: QueryShape = "native", task_route: bool = True, **options: Any
    ) -> None:
        super().__init__(**options)
        self.query_shape: QueryShape = query_shape
        self.task_route = task_route

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/task/minimax/v1/video_generation", self._submit, name=SUBMIT)
        router.add_get(
            "/task/minimax/v1/query/video_generation", self._query_native, name=QUERY_NATIVE
        )
        router.add_get("/task/minimax/v1/files/retrieve", self._retrieve, name=RETRIEVE)
        router.add_get("/task/{task_id}", self._query_task, name=QUERY)

    # -- test controls

    def callback_body(self, task_id: str) -> dict[str, Any]:
        """A MiniMax-style callback: the native shape with lowercase status words."""
        body = query_body(self.tasks[task_id], REPORTED_SIZE)
        body["status"] = {"Success": "success", "Fail": "failed"}.get(body["status"], "processing")
        return body

    # -- handlers

    async def _query_task(self, request: web.Request) -> web.StreamResponse:
        if not self.task_route:
            path = request.path
            return web.json_response(
                gateway_error(f"Invalid URL (GET {path})", "invalid_request_error"), status=404
            )
        return await self._answer_query(request, QUERY, request.match_info["task_id"])

    async def _query_native(self, request: web.Request) -> web.StreamResponse:
        return await self._answer_query(request, QUERY_NATIVE, request.query.get("task_id", ""))

    # -- helpers

    def _query_reply(self, task: SimTask, endpoint: str) -> dict[str, Any]:
        if endpoint == QUERY and self.query_shape == "wrapper":
            return self._wrapper(task)
        return query_body(task, REPORTED_SIZE)

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

    def _submit_problems(self, request: web.Request, body: Any) -> list[str]:
        """MiniMax's rules, gpt.ge's schema, and camera commands in Chinese."""
        return json_body_problems(request, body) or (
            schema_errors(SCHEMA, body)
            + rule_problems(body)
            + camera_spelling_problems(body.get("prompt"), "chinese")
        )

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") != self.api_key:
            body = gateway_error("invalid token", "new_api_error", "invalid_api_key")
            return web.json_response(body, status=401)
        return None
