"""The odkkk (EvoLink) adapter against its simulator: modes by image count, error codes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hailuo.errors import ProviderError, ProviderErrorKind
from hailuo.spec import JobSpec, Mode
from providers.base import Phase, PreparedInput
from providers.odkkk import OdkkkProvider
from tests import media
from tests.sims.base import Fault
from tests.sims.odkkk import OdkkkSimulator

KEY = "od-test-key"
FAST = aiohttp.ClientTimeout(total=0.5)
PNG = media.make_image("PNG", 640, 480)
JPEG = media.make_image("JPEG", 640, 480)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def prepared(
    mode: Mode = Mode.TEXT,
    prompt: str = "A fox in snow [Tracking shot]",
    *,
    duration: int = 6,
    resolution: str = "768P",
) -> PreparedInput:
    spec = JobSpec(mode=mode, prompt=prompt, duration=duration, resolution=resolution)
    first = data_url("image/png", PNG) if mode is not Mode.TEXT else None
    last = data_url("image/jpeg", JPEG) if mode is Mode.FIRST_LAST else None
    return PreparedInput(spec, first, last)


@pytest.fixture
async def sim(clock) -> AsyncIterator[OdkkkSimulator]:
    async with OdkkkSimulator(clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def provider(sim: OdkkkSimulator, session: aiohttp.ClientSession) -> OdkkkProvider:
    return OdkkkProvider(session, api_key=KEY, base_url=sim.api_base, timeout=FAST)


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as resp:
        return resp.status, await resp.read()


async def run_to_success(provider: OdkkkProvider, job: PreparedInput) -> str:
    receipt = await provider.submit(job)
    for _ in range(5):
        state = await provider.query(receipt.task_id, receipt.meta)
        if state.phase is Phase.SUCCEEDED:
            assert state.locator is not None
            return state.locator
    raise AssertionError("never succeeded")


# ------------------------------------------------------------------------ bodies


async def test_text_job_lifecycle_progress_and_download(provider, sim, session) -> None:
    receipt = await provider.submit(prepared())
    assert receipt.task_id.startswith("task-unified-")
    states = [await provider.query(receipt.task_id, receipt.meta) for _ in range(3)]
    assert [s.phase for s in states] == [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED]
    assert [s.raw_status for s in states] == ["pending", "processing", "completed"]
    assert states[1].progress is not None and 0 < states[1].progress < 100
    url = await provider.result_url(states[2].locator or "", receipt.meta)
    assert KEY not in url
    assert await fetch(session, url) == (200, sim.video)
    assert sim.download_auth_headers_seen == []
    assert sim.submits[0] == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "A fox in snow [Tracking shot]",
        "duration": 6,
        "quality": "768p",
        "model_params": {"prompt_optimizer": True, "fast_pretreatment": False},
    }
    assert sim.requests_to("submit")[0].path == "/apiv1/v1/videos/generations"
    assert sim.violations == []


@pytest.mark.parametrize(
    ("mode", "prompt", "resolution", "count"),
    [
        (Mode.IMAGE, "", "512P", 1),
        (Mode.IMAGE, "The waves roll", "1080P", 1),
        (Mode.FIRST_LAST, "Day turns to night [固定]", "768P", 2),
    ],
    ids=["i2v-512p-no-prompt", "i2v-1080p", "fl2v"],
)
async def test_image_count_selects_the_mode(
    provider, sim, mode: Mode, prompt: str, resolution: str, count: int
) -> None:
    await run_to_success(provider, prepared(mode, prompt, resolution=resolution))
    body = sim.submits[0]
    assert len(body["image_urls"]) == count
    assert body["quality"] == resolution.lower()
    assert ("prompt" in body) is bool(prompt)
    if mode is Mode.FIRST_LAST:
        assert body["prompt"] == "Day turns to night [Static shot]"
        assert body["image_urls"][1].startswith("data:image/jpeg;base64,")
    assert sim.violations == []


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ("http_400", ProviderErrorKind.INVALID_REQUEST, "400"),
        ("http_401", ProviderErrorKind.AUTH, "401"),
        ("http_402", ProviderErrorKind.BALANCE, "402"),
        ("http_429", ProviderErrorKind.RATE_LIMITED, "429"),
        ("http_500", ProviderErrorKind.UNAVAILABLE, "500"),
        ("http_502", ProviderErrorKind.UNAVAILABLE, "502"),
        ("http_503", ProviderErrorKind.UNAVAILABLE, "503"),
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


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": "insufficient_quota", "type": "x"}, ProviderErrorKind.BALANCE),
        ({"code": "quota_exceeded", "message": "slow down"}, ProviderErrorKind.RATE_LIMITED),
        ({"code": "content_policy_violation"}, ProviderErrorKind.MODERATION),
        ({"code": 403, "type": "permission_error"}, ProviderErrorKind.AUTH),
    ],
    ids=["quota-code", "quota-exceeded", "policy-at-submit", "permission-type"],
)
async def test_submit_error_body_codes_and_types(provider, sim, error, kind) -> None:
    status = 403 if error.get("type") == "permission_error" else 400
    sim.inject("submit", Fault.http(status, {"error": error}))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert caught.value.kind is kind


async def test_429_keeps_retry_after(provider, sim) -> None:
    sim.inject("submit", "http_429")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert caught.value.retry_after == 2.0


async def test_wrong_key_is_auth(sim, session) -> None:
    wrong = OdkkkProvider(session, api_key="sk-x", base_url=sim.api_base, timeout=FAST)
    with pytest.raises(ProviderError) as caught:
        await wrong.submit(prepared())
    assert caught.value.kind is ProviderErrorKind.AUTH
    assert sim.tasks == {}


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ("moderation", ProviderErrorKind.MODERATION, "content_policy_violation"),
        ("generation_failed", ProviderErrorKind.UNAVAILABLE, "generation_failed_no_content"),
        ("generation_failed_int", ProviderErrorKind.UNAVAILABLE, "500"),
    ],
)
async def test_task_failures_with_string_and_integer_codes(
    provider, sim, fault: str, kind: ProviderErrorKind, code: str
) -> None:
    receipt = await provider.submit(prepared())
    sim.inject("query", fault)
    state = await provider.query(receipt.task_id, receipt.meta)
    assert state.phase is Phase.FAILED
    assert state.failure is not None
    assert (state.failure.kind, state.failure.provider_code) == (kind, code)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": 400, "message": "Content policy violation."}, ProviderErrorKind.MODERATION),
        ({"code": 400, "message": "bad size"}, ProviderErrorKind.INVALID_REQUEST),
        ({"code": "quota_exceeded"}, ProviderErrorKind.UNAVAILABLE),  # never "wait" when done
        ({"code": "image_dimension_mismatch"}, ProviderErrorKind.INVALID_REQUEST),
        ({"code": "brand_new_code"}, ProviderErrorKind.UNAVAILABLE),
        (None, ProviderErrorKind.UNAVAILABLE),
    ],
)
def test_task_failure_table(provider, error, kind: ProviderErrorKind) -> None:
    body = {"id": "task-unified-1-x", "status": "failed", "progress": 0}
    if error is not None:
        body["error"] = error
    state = provider.task_state(body)
    assert state.failure is not None and state.failure.kind is kind


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("http_500", ProviderErrorKind.UNAVAILABLE),
        ("http_429", ProviderErrorKind.RATE_LIMITED),
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


@pytest.mark.parametrize("task_id", ["123", "task-unified-0-missing"])
async def test_bad_or_unknown_task_id_is_not_found(provider, task_id: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.query(task_id, {})
    assert caught.value.kind is ProviderErrorKind.NOT_FOUND


async def test_cancelled_callback_and_unknown_word(provider, sim) -> None:
    receipt = await provider.submit(prepared())
    sim.complete(receipt.task_id)
    assert provider.task_state(sim.webhook_body(receipt.task_id)).phase is Phase.SUCCEEDED
    assert provider.task_state({"status": "cancelled"}).phase is Phase.FAILED
    assert provider.task_state({"status": "queued_upstream"}).phase is Phase.RUNNING


async def test_expired_result_url_is_reported_by_the_cdn(provider, sim, session, clock) -> None:
    url = await run_to_success(provider, prepared())
    clock.advance(24 * 3600 + 1)
    assert (await fetch(session, url))[0] == 403
