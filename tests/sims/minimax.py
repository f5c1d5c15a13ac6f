"""Loopback simulator of the MiniMax official video API (providers.md §2, seed 001).

Routes (``base_url`` has no ``/v1``, like ``https://api.minimax.io``):
  POST /v1/video_generation                 submit; body checked against the seed's schemas
  GET  /v1/query/video_generation?task_id=  Preparing/Queueing -> Processing -> Success|Fail
  GET  /v1/files/retrieve?file_id=          ``file.file_id`` is a NUMBER here (string in query)
  GET  /download/<uuid>/output.mp4?Expires=&Signature=   the "CDN", same server, no auth

Behaviours copied from the docs because adapters get them wrong: failures come on HTTP 200
with ``base_resp.status_code != 0``; a wrong key is 2049 "invalid api key" on HTTP 200
while a missing key is HTTP 401 with 1004; the download URL must be fetched without the key.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.sims.base import Fault, schema_errors
from tests.sims.tasks import COMMON_FAULTS, TaskSimulator
from tests.sims.tasks import SimTask as BaseTask

SUBMIT, QUERY, RETRIEVE, DOWNLOAD = "submit", "query", "retrieve", "download"
T2V_SCHEMA = "minimax.video_generation.t2v.json"
I2V_SCHEMA = "minimax.video_generation.i2v.json"
HAILUO_02 = "MiniMax-Hailuo-02"
IN_PROGRESS = ("Preparing", "Queueing", "Processing")

# [INFERRED] Nominal 16:9 output sizes reported as video_width/video_height; the bytes
# actually served are the small test clip, so clients must not cross-check the two.
NOMINAL_SIZE = {"512P": (912, 512), "720P": (1280, 720), "768P": (1366, 768), "1080P": (1920, 1080)}
MISSING_KEY_MSG = (
    "login fail: Please carry the API secret key in the 'Authorization' field of the request header"
)


def base_resp(code: int = 0, msg: str = "success") -> dict[str, Any]:
    """MiniMax's envelope status; code 0 is the only success."""
    return {"base_resp": {"status_code": code, "status_msg": msg}}


def api_error(code: int, msg: str, name: str = "") -> Fault:
    """A ``base_resp`` error on HTTP 200, MiniMax's usual way of failing."""
    return Fault("api_error", name or f"base_resp_{code}", code=code, msg=msg)


#: MiniMax's own ``base_resp`` faults, which gpt.ge passes through unchanged.
BASE_RESP_FAULTS: dict[str, Fault] = {
    "rate_limit": api_error(1002, "rate limit exceeded(RPM)", "rate_limit"),
    "no_balance": api_error(1008, "insufficient balance", "no_balance"),
    "sensitive_prompt": api_error(1026, "input new_sensitive", "sensitive_prompt"),
    "invalid_params": api_error(2013, "invalid params", "invalid_params"),
    "generation_failed": Fault(
        "task_fail", "generation_failed", code=1027, msg="output new_sensitive"
    ),
}

FAULTS: dict[str, Fault] = {
    "http_500": Fault.http(500, base_resp(1024, "internal error")),
    "http_502": Fault.http(502, base_resp(1000, "bad gateway")),
    "http_503": Fault.http(503, base_resp(1000, "service unavailable")),
    "http_429": Fault.http(429, base_resp(1002, "rate limit exceeded(RPM)"), retry_after=2),
    **COMMON_FAULTS,
    "bad_key": api_error(1004, "account authentication failed", "bad_key"),
    "invalid_key": api_error(2049, "invalid api key", "invalid_key"),
    **BASE_RESP_FAULTS,
}


@dataclass
class SimTask(BaseTask):
    """A MiniMax task: its ``file_id`` once done, its ``base_resp`` once failed."""

    status: str = "Preparing"
    file_id: int | None = None
    error: tuple[int, str] = (0, "success")

    @property
    def size(self) -> tuple[int, int]:
        """Reported (width, height) for the requested resolution (768P is the default)."""
        return NOMINAL_SIZE.get(str(self.body.get("resolution", "768P")), NOMINAL_SIZE["768P"])


def progress_status(poll: int, polls_until_done: int | None) -> str:
    """Status shown at the ``poll``-th query while not yet done.

    With the default of 2: Preparing, Processing, then Success on the third query; larger
    values insert Queueing, so a client sees every in-progress word of the enum.
    """
    if poll == polls_until_done or (polls_until_done is None and poll > 1):
        return "Processing"
    return "Preparing" if poll == 1 else "Queueing"


def rule_problems(body: dict[str, Any]) -> list[str]:
    """Documented rules the JSON schema cannot express (providers.md §2, seed 001 table)."""
    problems = []
    prompt, image = body.get("prompt"), body.get("first_frame_image")
    if isinstance(prompt, str) and len(prompt) > 2000:
        problems.append(f"prompt is {len(prompt)} characters, the limit is 2000")
    for key in ("first_frame_image", "last_frame_image"):
        if isinstance(ref := body.get(key), str) and not _is_image_ref(ref):
            problems.append(f"{key} is neither an http(s) URL nor a data:image/... base64 URL")
    if body.get("model") != HAILUO_02:
        return problems
    resolution, duration = body.get("resolution", "768P"), body.get("duration", 6)
    if duration not in (6, 10):
        problems.append(f"duration {duration!r} is not 6 or 10")
    if resolution == "1080P" and duration == 10:
        problems.append("1080P supports 6 s only")
    if resolution == "720P":
        problems.append("720P is not a Hailuo-02 resolution")
    if resolution == "512P" and image is None:
        problems.append("512P is image-to-video only")
    if "last_frame_image" in body and (image is None or resolution == "512P"):
        problems.append("last_frame_image needs first_frame_image and is not allowed at 512P")
    return problems


def _is_image_ref(ref: str) -> bool:
    """URL or data URL in a format MiniMax lists (JPG/JPEG/PNG/WebP)."""
    if ref.startswith(("https://", "http://")):
        return True
    prefixes = ("data:image/jpeg;base64,", "data:image/jpg;base64,", "data:image/png;base64,")
    return ref.startswith((*prefixes, "data:image/webp;base64,"))


class MiniMaxSimulator(TaskSimulator):
    """The MiniMax official API on loopback. See the module docstring for routes."""

    API_KEY = "mm-test-key"
    TERMINAL = ("Success", "Fail")
    DONE = "Success"
    ENDPOINTS: ClassVar[tuple[str, ...]] = (SUBMIT, QUERY, RETRIEVE, DOWNLOAD)
    FAULTS: ClassVar[dict[str, Fault]] = FAULTS
    EXTRA_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        SUBMIT: frozenset({"api_error", "accept_then_drop"}),
        QUERY: frozenset({"api_error", "task_fail"}),
        RETRIEVE: frozenset({"api_error"}),
    }
    # Realistic magnitudes (15 digits, as in the docs) but below 2**53, so a JSON float
    # decoder would still round-trip them: (first, step) of task ids and of file ids.
    TASK_IDS: ClassVar[tuple[int, int]] = (106916112212032, 7919)
    FILE_IDS: ClassVar[tuple[int, int]] = (205258526306433, 104729)

    def __init__(self, **options: Any) -> None:
        """Options as :class:`TaskSimulator` takes them (``api_key``, ``video``...)."""
        super().__init__(**options)
        self.tasks: dict[str, SimTask] = {}
        self._files: dict[int, SimTask] = {}
        self._task_ids = itertools.count(*self.TASK_IDS)
        self._file_ids = itertools.count(*self.FILE_IDS)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/video_generation", self._submit, name=SUBMIT)
        router.add_get("/v1/query/video_generation", self._query, name=QUERY)
        router.add_get("/v1/files/retrieve", self._retrieve, name=RETRIEVE)

    # -- test controls

    def complete(self, task_id: str) -> SimTask:
        """Finish a task now: the next query says Success with a file_id."""
        task = self.tasks[task_id]
        if task.status not in self.TERMINAL:
            task.file_id = next(self._file_ids)
            self._files[task.file_id] = task
        return super().complete(task_id)

    def fail(self, task_id: str, code: int = 1027, msg: str = "output new_sensitive") -> SimTask:
        """Fail a task now: the next query says Fail with this ``base_resp``."""
        return self.end(task_id, "Fail", error=(code, msg))

    # -- handlers

    async def _query(self, request: web.Request) -> web.StreamResponse:
        return await self._answer_query(request, QUERY, request.query.get("task_id", ""))

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        if fault := self.faults.pop(RETRIEVE):
            return await self._answer_fault(request, fault, RETRIEVE)
        if denied := self._check_auth(request):
            return denied
        task = self._files.get(_as_int(request.query.get("file_id", "")))
        if task is None or task.blob_token is None or task.file_id is None:
            # [INFERRED] Undocumented like the unknown task below; same choice, 2013.
            return _reply({}, 2013, "invalid params, file not found")
        file = {
            "file_id": task.file_id,  # a NUMBER here, a string in the query reply
            "bytes": len(task.video),
            "created_at": int(self.clock()),
            "filename": "output.mp4",
            "purpose": "video_generation",
            "download_url": self.signed_url(task.blob_token),
        }
        return _reply({"file": file})

    # -- the task life's replies

    def _submit_problems(self, request: web.Request, body: Any) -> list[str]:
        """Everything wrong with a submit request that the real API would refuse (2013)."""
        if request.content_type != "application/json":
            return [f"Content-Type is {request.content_type!r}, must be application/json"]
        if not isinstance(body, dict):
            return ["body is not a JSON object"]
        schema = I2V_SCHEMA if "first_frame_image" in body else T2V_SCHEMA
        return schema_errors(schema, body) or rule_problems(body)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        """Missing key: HTTP 401 + 1004. Wrong key: HTTP 200 + 2049, as the real API does."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return web.json_response(base_resp(1004, MISSING_KEY_MSG), status=401)
        if header.removeprefix("Bearer ").strip() != self.api_key:
            return _reply({}, 2049, "invalid api key")
        return None

    def _refuse(self, problems: list[str]) -> web.Response:
        return _reply({"task_id": ""}, 2013, f"invalid params, {problems[0]}")

    def _new_task(self, request: web.Request, body: dict[str, Any]) -> SimTask:
        return SimTask(str(next(self._task_ids)), body, self.polls_until_done, self.video)

    def _accepted(self, task: SimTask) -> web.Response:
        return _reply({"task_id": task.task_id})

    def _lookup(self, request: web.Request, task_id: str) -> SimTask | web.Response:
        # [INFERRED] The real reply for an unknown or foreign task is undocumented;
        # 2013 (invalid params) is the closest documented code, and it is non-zero,
        # which is all a correct client may rely on.
        task = self.tasks.get(task_id)
        if task is None:
            return _reply({"task_id": "", "status": ""}, 2013, "invalid params, task not found")
        return task

    def _task_fault(self, task: SimTask, fault: Fault) -> None:
        self.fail(task.task_id, fault.code, fault.msg)

    def _progress(self, task: SimTask) -> None:
        task.status = progress_status(task.polls, task.polls_until_done)

    def _query_reply(self, task: SimTask, endpoint: str) -> dict[str, Any]:
        """The body of a query reply (the endpoint matters to gpt.ge's subclass)."""
        return query_body(task)

    async def _answer_fault(
        self, request: web.Request, fault: Fault, endpoint: str
    ) -> web.StreamResponse:
        """Reply with a fault: ``api_error`` (in the endpoint's shape) here, else generic."""
        if fault.kind == "api_error":
            shape = {SUBMIT: {"task_id": ""}, RETRIEVE: {}}.get(endpoint)
            return _reply(shape or {"task_id": "", "status": ""}, fault.code, fault.msg)
        return await self.answer_generic(request, fault)


def _reply(fields: dict[str, Any], code: int = 0, msg: str = "success") -> web.Response:
    """HTTP 200 JSON with ``base_resp``; MiniMax reports most errors this way."""
    return web.json_response({**fields, **base_resp(code, msg)})


def query_body(task: SimTask, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The query reply: ``file_id`` is a string ("" until Success), sizes 0 until then.

    The size reported is ``size``, by default the nominal one of the task's resolution.
    """
    done = task.status == "Success"
    width, height = (size or task.size) if done else (0, 0)
    code, msg = task.error if task.status == "Fail" else (0, "success")
    return {
        "task_id": task.task_id,
        "status": task.status,
        "file_id": str(task.file_id) if done else "",
        "video_width": width,
        "video_height": height,
        **base_resp(code, msg),
    }


def _as_int(value: str) -> int:
    """Parse a file_id query parameter; -1 (never issued) when it is not an integer."""
    try:
        return int(value)
    except ValueError:
        return -1
