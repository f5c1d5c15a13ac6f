"""Tests of the MiniMax simulator itself, through a plain aiohttp client.

If the simulator drifts from providers.md §2, every adapter test built on it proves the
wrong thing, so its documented quirks (file_id types, base_resp on HTTP 200, keyless
downloads) and each injected fault are pinned here.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests import media
from tests.sims.base import Fault
from tests.sims.minimax import MiniMaxSimulator
from tests.support import FakeClock

KEY = "mm-test-key"
T2V = {"model": "MiniMax-Hailuo-02", "prompt": "A cat [Pan left]", "duration": 6}


def i2v_body(resolution: str = "512P") -> dict[str, Any]:
    png = base64.b64encode(media.make_image("PNG", 640, 480)).decode()
    return {
        "model": "MiniMax-Hailuo-02",
        "prompt": "The lighthouse beam sweeps",
        "first_frame_image": f"data:image/png;base64,{png}",
        "duration": 10,
        "resolution": resolution,
    }


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post_submit(
    http: aiohttp.ClientSession, sim: MiniMaxSimulator, body: Any = T2V, key: str = KEY
) -> Any:
    """The raw submit request, for a test that reads the response itself."""
    return http.post(f"{sim.base_url}/v1/video_generation", json=body, headers=auth(key))


async def submit(
    http: aiohttp.ClientSession, sim: MiniMaxSimulator, body: Any, key: str = KEY
) -> dict[str, Any]:
    async with post_submit(http, sim, body, key) as resp:
        assert resp.status == 200
        return await resp.json()


async def query(http: aiohttp.ClientSession, sim: MiniMaxSimulator, task_id: str) -> dict[str, Any]:
    url = f"{sim.base_url}/v1/query/video_generation"
    async with http.get(url, params={"task_id": task_id}, headers=auth()) as resp:
        assert resp.status == 200
        return await resp.json()


async def retrieve(
    http: aiohttp.ClientSession, sim: MiniMaxSimulator, file_id: str
) -> dict[str, Any]:
    url = f"{sim.base_url}/v1/files/retrieve"
    async with http.get(url, params={"file_id": file_id}, headers=auth()) as resp:
        assert resp.status == 200
        return await resp.json()


async def run_to_success(http: aiohttp.ClientSession, sim: MiniMaxSimulator) -> dict[str, Any]:
    """Submit T2V and poll until Success; returns the final query reply."""
    task_id = (await submit(http, sim, T2V))["task_id"]
    sim.complete(task_id)
    return await query(http, sim, task_id)


# ------------------------------------------------------------------------ lifecycle


@pytest.mark.parametrize(
    ("body", "size"),
    [(T2V, (1366, 768)), (i2v_body(), (912, 512))],
    ids=["t2v", "i2v"],
)
async def test_job_goes_preparing_processing_success(
    sim, http, body: dict[str, Any], size: tuple[int, int]
) -> None:
    reply = await submit(http, sim, body)
    assert reply["base_resp"] == {"status_code": 0, "status_msg": "success"}
    assert reply["task_id"].isdigit()

    replies = [await query(http, sim, reply["task_id"]) for _ in range(3)]

    assert [r["status"] for r in replies] == ["Preparing", "Processing", "Success"]
    assert all(r["base_resp"]["status_code"] == 0 for r in replies)
    assert [r["file_id"] for r in replies[:2]] == ["", ""]
    assert (replies[2]["video_width"], replies[2]["video_height"]) == size
    assert sim.submits == [body]
    assert sim.violations == []


async def test_per_task_polls_and_explicit_controls(sim, http) -> None:
    slow = (await submit(http, sim, T2V))["task_id"]
    sim.tasks[slow].polls_until_done = 3
    statuses = [(await query(http, sim, slow))["status"] for _ in range(4)]
    assert statuses == ["Preparing", "Queueing", "Processing", "Success"]

    held = (await submit(http, sim, T2V))["task_id"]
    sim.tasks[held].polls_until_done = None  # in progress until told otherwise
    assert [(await query(http, sim, held))["status"] for _ in range(3)] == [
        "Preparing",
        "Processing",
        "Processing",
    ]
    sim.fail(held)
    failed = await query(http, sim, held)
    assert failed["status"] == "Fail"
    assert failed["base_resp"] == {"status_code": 1027, "status_msg": "output new_sensitive"}


async def test_unknown_task_is_a_nonzero_base_resp(sim, http) -> None:
    reply = await query(http, sim, "999")
    assert reply["base_resp"]["status_code"] == 2013


# ------------------------------------------------------------------ result download


async def test_file_id_is_a_string_in_query_and_a_number_in_retrieve(sim, http, clock) -> None:
    done = await run_to_success(http, sim)
    assert isinstance(done["file_id"], str)

    file = (await retrieve(http, sim, done["file_id"]))["file"]

    assert isinstance(file["file_id"], int)
    assert file["file_id"] == int(done["file_id"])
    assert file["bytes"] == len(sim.video)
    assert file["created_at"] == int(clock.now)
    assert (file["filename"], file["purpose"]) == ("output.mp4", "video_generation")
    assert file["download_url"].startswith(f"{sim.base_url}/download/")


async def test_download_serves_the_exact_h264_without_any_key(sim, http) -> None:
    done = await run_to_success(http, sim)
    url = (await retrieve(http, sim, done["file_id"]))["file"]["download_url"]

    async with http.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "video/mp4"
        assert resp.content_length == len(sim.video)
        data = await resp.read()

    assert data == sim.video
    info = media.probe_video(data)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p"), info.raw
    assert "Video: h264" in info.raw
    assert sim.download_auth_headers_seen == []
    assert sim.downloads == 1


async def test_download_records_a_leaked_key(sim, http) -> None:
    done = await run_to_success(http, sim)
    url = (await retrieve(http, sim, done["file_id"]))["file"]["download_url"]
    async with http.get(url, headers=auth()) as resp:
        await resp.read()
    assert sim.download_auth_headers_seen == [f"Bearer {KEY}"]
    assert all("Authorization" not in r.headers for r in sim.requests)


async def test_download_url_expires_and_retrieve_gives_a_fresh_one(sim, http, clock) -> None:
    done = await run_to_success(http, sim)
    old = (await retrieve(http, sim, done["file_id"]))["file"]["download_url"]
    clock.advance(9 * 3600 + 1)

    async with http.get(old) as resp:
        assert resp.status == 403
        assert "Request has expired" in await resp.text()
    fresh = (await retrieve(http, sim, done["file_id"]))["file"]["download_url"]
    async with http.get(fresh) as resp:
        assert await resp.read() == sim.video


async def test_make_mp4_padding_gives_exact_sizes_that_still_decode() -> None:
    big = media.mp4_of_size(200_001)
    assert len(big) == 200_001
    assert media.probe_video(big).codec == "h264"
    assert len(media.make_mp4(extra_bytes=1000)) == len(media.make_mp4()) + 1000


# ------------------------------------------------------------------ request checks


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**T2V, "duration": "6"}, "duration: '6' is not of type 'integer'"),
        ({**T2V, "model": "Hailuo-03"}, "model: 'Hailuo-03' is not one of"),
        ({"model": "MiniMax-Hailuo-02"}, "'prompt' is a required property"),
        ({**T2V, "resolution": "1080P", "duration": 10}, "1080P supports 6 s only"),
        ({**T2V, "resolution": "512P"}, "512P is image-to-video only"),
        ({**i2v_body(), "first_frame_image": "iVBORw0KGgo="}, "neither an http(s) URL"),
    ],
    ids=["duration-string", "unknown-model", "no-prompt", "1080p-10s", "512p-t2v", "raw-b64"],
)
async def test_invalid_bodies_are_recorded_and_refused(
    sim, http, body: dict[str, Any], needle: str
) -> None:
    reply = await submit(http, sim, body)

    assert reply["base_resp"]["status_code"] == 2013
    assert len(sim.violations) == 1
    assert needle in sim.violations[0]
    assert sim.tasks == {}
    assert sim.submits == []


async def test_non_json_content_type_is_a_violation(sim, http) -> None:
    url = f"{sim.base_url}/v1/video_generation"
    async with http.post(url, data={"model": "x"}, headers=auth()) as resp:
        assert (await resp.json())["base_resp"]["status_code"] == 2013
    assert "Content-Type" in sim.violations[0]


async def test_requests_are_recorded_without_the_key(sim, http) -> None:
    task_id = (await submit(http, sim, T2V))["task_id"]
    await query(http, sim, task_id)

    submitted, queried = sim.requests
    assert (submitted.endpoint, submitted.method, submitted.path) == (
        "submit",
        "POST",
        "/v1/video_generation",
    )
    assert submitted.json == T2V
    assert submitted.headers["Content-Type"] == "application/json"
    assert queried.query == {"task_id": task_id}
    assert "Authorization" not in submitted.headers


@pytest.mark.parametrize("path", ["/v1/query/video_generation?task_id=1", "/v1/files/retrieve"])
async def test_wrong_key_is_2049_on_http_200_and_missing_key_is_401(sim, http, path: str) -> None:
    async with http.get(sim.base_url + path, headers=auth("wrong")) as resp:
        assert resp.status == 200
        assert (await resp.json())["base_resp"]["status_code"] == 2049
    async with http.get(sim.base_url + path) as resp:
        assert resp.status == 401
        assert (await resp.json())["base_resp"]["status_code"] == 1004


async def test_wrong_key_on_submit_creates_no_task(sim, http) -> None:
    reply = await submit(http, sim, T2V, key="sk-stolen")
    assert reply["base_resp"] == {"status_code": 2049, "status_msg": "invalid api key"}
    assert sim.tasks == {}


# -------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "status"), [("http_500", 500), ("http_502", 502), ("http_503", 503)]
)
async def test_http_errors_have_json_bodies(sim, http, fault: str, status: int) -> None:
    sim.inject("submit", fault)
    async with post_submit(http, sim) as resp:
        assert resp.status == status
        assert (await resp.json())["base_resp"]["status_code"] != 0
    assert sim.tasks == {}
    assert (await submit(http, sim, T2V))["base_resp"]["status_code"] == 0  # one-shot


async def test_429_carries_retry_after(sim, http) -> None:
    sim.inject("query", "http_429")
    url = f"{sim.base_url}/v1/query/video_generation?task_id=1"
    async with http.get(url, headers=auth()) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("rate_limit", 1002),
        ("bad_key", 1004),
        ("invalid_key", 2049),
        ("no_balance", 1008),
        ("sensitive_prompt", 1026),
        ("invalid_params", 2013),
    ],
)
async def test_base_resp_faults_come_on_http_200(sim, http, fault: str, code: int) -> None:
    sim.inject("submit", fault)
    reply = await submit(http, sim, T2V)
    assert reply["base_resp"]["status_code"] == code
    assert reply["task_id"] == ""
    assert sim.tasks == {}
    assert sim.violations == []


async def test_custom_base_resp_fault_on_retrieve(sim, http) -> None:
    done = await run_to_success(http, sim)
    sim.inject("retrieve", Fault("api_error", code=1000, msg="unknown error"))
    assert (await retrieve(http, sim, done["file_id"]))["base_resp"]["status_code"] == 1000


async def test_hang_is_ended_by_the_client_timeout_and_released_by_close(
    clock: FakeClock,
) -> None:
    sim = await MiniMaxSimulator(clock=clock).start()
    sim.inject("query", "hang")
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        with pytest.raises(TimeoutError):
            await query(http, sim, "1")
    async with asyncio.timeout(5):  # close must not wait for the parked handler
        await sim.close()


async def test_malformed_json_is_a_truncated_200(sim, http) -> None:
    sim.inject("submit", "malformed_json")
    async with post_submit(http, sim) as resp:
        assert resp.status == 200
        with pytest.raises(ValueError, match=r"Unterminated string|Expecting"):
            await resp.json()


async def test_generation_failure_at_query_time(sim, http) -> None:
    task_id = (await submit(http, sim, T2V))["task_id"]
    sim.inject("query", "generation_failed")

    reply = await query(http, sim, task_id)

    assert (reply["status"], reply["file_id"]) == ("Fail", "")
    assert reply["base_resp"] == {"status_code": 1027, "status_msg": "output new_sensitive"}
    assert (await query(http, sim, task_id))["status"] == "Fail"  # terminal


async def test_expired_download_is_an_oss_style_403(sim, http) -> None:
    done = await run_to_success(http, sim)
    url = (await retrieve(http, sim, done["file_id"]))["file"]["download_url"]
    sim.inject("download", "expired_url")
    async with http.get(url) as resp:
        assert resp.status == 403
        assert "<Code>AccessDenied</Code>" in await resp.text()
    assert sim.downloads == 0


async def test_accept_then_drop_creates_the_task_but_never_answers(sim, http) -> None:
    sim.inject("submit", "accept_then_drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await submit(http, sim, T2V)
    assert sim.submits == [T2V]
    (task_id,) = sim.tasks
    assert (await query(http, sim, task_id))["status"] == "Preparing"


async def test_drop_on_query_closes_without_an_answer(sim, http) -> None:
    # aiohttp silently retries an idempotent GET once after a disconnect (RFC 9112 §9.3.1),
    # so a query must be dropped twice for the client to see it; a single drop is healed.
    sim.inject("query", "drop")
    assert (await query(http, sim, "1"))["base_resp"]["status_code"] == 2013
    sim.inject("query", "drop", times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await query(http, sim, "1")
    assert len(sim.requests_to("query")) == 4


async def test_faults_queue_in_order_and_are_consumed(sim, http) -> None:
    task_id = (await submit(http, sim, T2V))["task_id"]
    sim.inject("query", "http_503", times=2)
    sim.inject("query", "rate_limit")
    url = f"{sim.base_url}/v1/query/video_generation"
    seen = []
    for _ in range(4):
        async with http.get(url, params={"task_id": task_id}, headers=auth()) as resp:
            seen.append((resp.status, (await resp.json())["base_resp"]["status_code"]))
    assert seen == [(503, 1000), (503, 1000), (200, 1002), (200, 0)]
    assert sim.faults.pending() == 0


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [("query", "accept_then_drop"), ("submit", "generation_failed"), ("submit", "expired_url"),
     ("submit", "no_such_fault"), ("nowhere", "hang")],
)  # fmt: skip
def test_inject_refuses_faults_that_cannot_apply(endpoint: str, fault: str) -> None:
    sim = MiniMaxSimulator(video=b"unused")
    with pytest.raises(ValueError):
        sim.inject(endpoint, fault)
