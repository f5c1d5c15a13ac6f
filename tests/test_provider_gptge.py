"""The gpt.ge adapter against its simulator: both query shapes, the fallback path, errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hailuo.errors import ProviderError, ProviderErrorKind
from hailuo.spec import JobSpec, Mode
from providers.base import Phase, PreparedInput
from providers.gptge import GptGeProvider
from tests import media
from tests.sims.base import Fault
from tests.sims.gptge import GptGeSimulator

KEY = "ge-test-key"
FAST = aiohttp.ClientTimeout(total=0.5)
PNG = media.make_image("PNG", 640, 480)
JPEG = media.make_image("JPEG", 640, 480)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def prepared(
    mode: Mode = Mode.TEXT,
    prompt: str = "A girl rides away [Truck right], then [Pull out]",
    *,
    duration: int = 6,
    resolution: str = "768P",
    callback_url: str | None = None,
) -> PreparedInput:
    spec = JobSpec(mode=mode, prompt=prompt, duration=duration, resolution=resolution)
    first = data_url("image/png", PNG) if mode is not Mode.TEXT else None
    last = data_url("image/jpeg", JPEG) if mode is Mode.FIRST_LAST else None
    return PreparedInput(spec, first, last, callback_url)


@pytest.fixture
async def sim(clock) -> AsyncIterator[GptGeSimulator]:
    async with GptGeSimulator(clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def provider(sim: GptGeSimulator, session: aiohttp.ClientSession) -> GptGeProvider:
    return GptGeProvider(session, api_key=KEY, base_url=sim.base_url, timeout=FAST)


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as resp:
        return resp.status, await resp.read()


async def run_to_success(provider: GptGeProvider, job: PreparedInput) -> str:
    receipt = await provider.submit(job)
    for _ in range(5):
        state = await provider.query(receipt.task_id, receipt.meta)
        if state.phase is Phase.SUCCEEDED:
            assert state.locator is not None
            return state.locator
    raise AssertionError("never succeeded")


# ------------------------------------------------------------------------ bodies


async def test_text_job_native_shape_and_two_step_download(provider, sim, session) -> None:
    receipt = await provider.submit(prepared())
    states = [await provider.query(receipt.task_id, receipt.meta) for _ in range(3)]
    assert [s.phase for s in states] == [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED]
    file_id = states[2].locator or ""
    assert file_id.isdigit()  # a file id, turned into a URL by files/retrieve
    url = await provider.result_url(file_id, receipt.meta)
    assert KEY not in url
    assert await fetch(session, url) == (200, sim.video)
    assert sim.download_auth_headers_seen == []
    assert sim.submits[0] == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "A girl rides away [右移], then [拉远]",
        "duration": 6,
        "resolution": "768P",
        "prompt_optimizer": True,
        "fast_pretreatment": False,
    }
    assert [r.path for r in sim.requests_to("query")] == [f"/task/{receipt.task_id}"] * 3
    assert sim.violations == []


@pytest.mark.parametrize(
    ("mode", "prompt", "resolution", "duration"),
    [(Mode.IMAGE, "", "512P", 10), (Mode.FIRST_LAST, "Bloom [Zoom in]", "1080P", 6)],
    ids=["i2v-512p-no-prompt", "fl2v-1080p"],
)
async def test_image_bodies_pass_the_checks(
    provider, sim, mode: Mode, prompt: str, resolution: str, duration: int
) -> None:
    job = prepared(mode, prompt, resolution=resolution, duration=duration)
    await run_to_success(provider, job)
    body = sim.submits[0]
    assert body["first_frame_image"].startswith("data:image/png;base64,")
    assert ("last_frame_image" in body) is (mode is Mode.FIRST_LAST)
    assert (body["duration"], body["resolution"]) == (duration, resolution)
    if prompt:
        assert body["prompt"] == "Bloom [变焦推近]"
    assert sim.violations == []


async def test_callback_url_is_passed_through(provider, sim) -> None:
    await provider.submit(prepared(callback_url="https://bot.example/cb/gptge/1"))
    assert sim.submits[0]["callback_url"] == "https://bot.example/cb/gptge/1"
    assert sim.violations == []


# -------------------------------------------------------------- query shapes


async def test_wrapper_shape_gives_a_direct_video_url(provider, sim, session) -> None:
    sim.query_shape = "wrapper"  # top-level status is the gateway's integer code
    locator = await run_to_success(provider, prepared())
    assert locator.startswith(sim.base_url + "/download/")
    assert await provider.result_url(locator, {}) == locator
    assert await fetch(session, locator) == (200, sim.video)
    assert sim.requests_to("retrieve") == []


async def test_wrapper_shape_failure(provider, sim) -> None:
    sim.query_shape = "wrapper"
    receipt = await provider.submit(prepared())
    sim.fail(receipt.task_id)
    state = await provider.query(receipt.task_id, receipt.meta)
    assert state.phase is Phase.FAILED and state.failure is not None


async def test_task_path_404_falls_back_to_the_minimax_query_path(provider, sim) -> None:
    sim.task_route = False
    await run_to_success(provider, prepared())
    assert len(sim.requests_to("query")) == 3  # each poll tries the documented path first
    assert len(sim.requests_to("query_native")) == 3
    assert sim.requests_to("query_native")[0].query["task_id"] == next(iter(sim.tasks))


def test_callback_body_and_nested_wrapper_are_read(provider) -> None:
    callback = {"task_id": "1", "status": "success", "file_id": "205258526306433"}
    assert provider.task_state(callback).locator == "205258526306433"
    assert provider.task_state({"task_id": "1", "status": "processing"}).phase is Phase.RUNNING
    nested = {"code": "success", "data": {"status": "SUCCESS", "data": {"status": "Success",
              "file_id": 42}}}  # fmt: skip
    assert provider.task_state(nested).locator == "42"
    progress = {"code": 0, "data": {"status": "IN_PROGRESS", "progress": "40%"}}
    assert provider.task_state(progress).progress == 40
    assert provider.task_state({"status": "Cooking"}).phase is Phase.RUNNING
    with pytest.raises(ProviderError):
        provider.task_state({"code": 500, "status": 500})


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ("rate_limit", ProviderErrorKind.RATE_LIMITED, "1002"),
        ("no_balance", ProviderErrorKind.BALANCE, "1008"),
        ("sensitive_prompt", ProviderErrorKind.MODERATION, "1026"),
        ("invalid_params", ProviderErrorKind.INVALID_REQUEST, "2013"),
        ("gateway_no_balance", ProviderErrorKind.BALANCE, "insufficient_user_quota"),
        ("gateway_bad_key", ProviderErrorKind.AUTH, "invalid_api_key"),
        ("http_429", ProviderErrorKind.RATE_LIMITED, "rate_limit_exceeded"),
        ("http_500", ProviderErrorKind.UNAVAILABLE, "upstream_error"),
        ("http_502", ProviderErrorKind.UNAVAILABLE, "upstream_error"),
        ("http_503", ProviderErrorKind.UNAVAILABLE, "new_api_error"),
        ("hang", ProviderErrorKind.UNKNOWN_OUTCOME, None),
        ("malformed_json", ProviderErrorKind.UNKNOWN_OUTCOME, None),
        ("drop", ProviderErrorKind.UNKNOWN_OUTCOME, None),
        ("accept_then_drop", ProviderErrorKind.UNKNOWN_OUTCOME, None),
    ],
)
async def test_submit_faults(
    provider, sim, fault: str, kind: ProviderErrorKind, code: str | None
) -> None:
    sim.inject("submit", fault)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert (caught.value.kind, caught.value.provider_code) == (kind, code)
    assert len(sim.requests_to("submit")) == 1


async def test_wrong_key_is_auth(sim, session) -> None:
    wrong = GptGeProvider(session, api_key="sk-x", base_url=sim.base_url, timeout=FAST)
    with pytest.raises(ProviderError) as caught:
        await wrong.submit(prepared())
    assert caught.value.kind is ProviderErrorKind.AUTH
    assert sim.tasks == {}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"error": {"message": "该令牌额度已用尽", "type": "new_api_error"}}, "balance"),
        ({"error": {"message": "boom", "type": "weird", "code": ""}}, "bad_reply"),
    ],
)
async def test_error_object_on_http_200(provider, sim, body, kind: str) -> None:
    sim.inject("submit", Fault.http(200, body))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert caught.value.kind.value == kind


async def test_generation_failure_1027_is_moderation(provider, sim) -> None:
    receipt = await provider.submit(prepared())
    sim.inject("query", "generation_failed")
    state = await provider.query(receipt.task_id, receipt.meta)
    assert state.phase is Phase.FAILED
    assert state.failure is not None
    assert (state.failure.kind, state.failure.provider_code) == (
        ProviderErrorKind.MODERATION,
        "1027",
    )


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("http_500", ProviderErrorKind.UNAVAILABLE),
        ("rate_limit", ProviderErrorKind.RATE_LIMITED),
        ("hang", ProviderErrorKind.UNAVAILABLE),
        ("malformed_json", ProviderErrorKind.BAD_REPLY),
    ],
)
async def test_query_faults_raise_and_the_task_goes_on(
    provider, sim, fault: str, kind: ProviderErrorKind
) -> None:
    receipt = await provider.submit(prepared())
    sim.inject("query", fault)
    with pytest.raises(ProviderError) as caught:
        await provider.query(receipt.task_id, receipt.meta)
    assert caught.value.kind is kind
    assert (await provider.query(receipt.task_id, receipt.meta)).phase is Phase.QUEUED


async def test_expired_url_is_replaced_by_a_new_retrieve(provider, sim, session, clock) -> None:
    file_id = await run_to_success(provider, prepared())
    old = await provider.result_url(file_id, {})
    clock.advance(9 * 3600 + 1)
    assert (await fetch(session, old))[0] == 403
    fresh = await provider.result_url(file_id, {})
    assert await fetch(session, fresh) == (200, sim.video)


async def test_retrieve_error_is_raised(provider, sim) -> None:
    file_id = await run_to_success(provider, prepared())
    sim.inject("retrieve", Fault("api_error", code=1000, msg="unknown error"))
    with pytest.raises(ProviderError) as caught:
        await provider.result_url(file_id, {})
    assert caught.value.kind is ProviderErrorKind.UNAVAILABLE
