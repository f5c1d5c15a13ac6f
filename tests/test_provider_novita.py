"""The Novita adapter against its simulator: bodies, the two 403s, faults, fresh URLs."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hailuo.errors import ProviderError, ProviderErrorKind
from hailuo.spec import JobSpec, Mode
from providers.base import Phase, PreparedInput
from providers.novita import DEFAULT_PROMPT, NovitaProvider
from tests import media
from tests.sims.base import Fault
from tests.sims.novita import NovitaSimulator

KEY = "nv-test-key"
FAST = aiohttp.ClientTimeout(total=0.5)
PNG = media.make_image("PNG", 640, 480)
WEBP = media.make_image("WEBP", 640, 480)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def prepared(
    mode: Mode = Mode.TEXT,
    prompt: str = "A lighthouse at dusk [Zoom out]",
    *,
    duration: int = 6,
    resolution: str = "768P",
    optimizer: bool = True,
) -> PreparedInput:
    spec = JobSpec(
        mode=mode,
        prompt=prompt,
        duration=duration,
        resolution=resolution,
        prompt_optimizer=optimizer,
        fast_pretreatment=True,
    )
    first = data_url("image/png", PNG) if mode is not Mode.TEXT else None
    last = data_url("image/webp", WEBP) if mode is Mode.FIRST_LAST else None
    return PreparedInput(spec, first, last)


@pytest.fixture
async def sim(clock) -> AsyncIterator[NovitaSimulator]:
    async with NovitaSimulator(clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def provider(sim: NovitaSimulator, session: aiohttp.ClientSession) -> NovitaProvider:
    return NovitaProvider(session, api_key=KEY, base_url=sim.base_url, timeout=FAST)


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as resp:
        return resp.status, await resp.read()


async def run_to_success(provider: NovitaProvider, job: PreparedInput) -> tuple[str, dict]:
    receipt = await provider.submit(job)
    for _ in range(5):
        state = await provider.query(receipt.task_id, receipt.meta)
        if state.phase is Phase.SUCCEEDED:
            assert state.locator is not None
            return state.locator, receipt.meta
    raise AssertionError("never succeeded")


# ------------------------------------------------------------------------ bodies


async def test_text_job_lifecycle_with_progress(provider, sim, session) -> None:
    receipt = await provider.submit(prepared(optimizer=False))
    states = [await provider.query(receipt.task_id, receipt.meta) for _ in range(3)]
    assert [s.phase for s in states] == [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED]
    assert states[1].progress is not None and 0 <= states[1].progress < 100
    url = await provider.result_url(states[2].locator or "", receipt.meta)
    assert KEY not in url
    assert await fetch(session, url) == (200, sim.video)
    assert sim.download_auth_headers_seen == []
    assert sim.submits[0] == {
        "prompt": "A lighthouse at dusk [Zoom out]",
        "duration": 6,
        "resolution": "768P",
        "enable_prompt_expansion": False,
        "fast_pretreatment": True,
    }
    assert sim.violations == []


async def test_image_job_without_prompt(provider, sim) -> None:
    await run_to_success(provider, prepared(Mode.IMAGE, "", duration=10))
    body = sim.submits[0]
    assert body["prompt"] == DEFAULT_PROMPT
    assert body["image"].startswith("data:image/png;base64,")
    assert "end_image" not in body and "image_url" not in body
    assert sim.violations == []


async def test_first_last_frame_uses_end_image(provider, sim) -> None:
    await run_to_success(provider, prepared(Mode.FIRST_LAST, "[左摇] a door opens"))
    body = sim.submits[0]
    assert body["prompt"] == "[Pan left] a door opens"
    assert body["end_image"].startswith("data:image/webp;base64,")
    assert sim.violations == []


async def test_1080p_body(provider, sim) -> None:
    await run_to_success(provider, prepared(resolution="1080P"))
    assert sim.submits[0]["resolution"] == "1080P"
    assert sim.violations == []


async def test_512p_is_refused_before_any_request(provider, sim) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared(Mode.IMAGE, resolution="512P"))
    assert caught.value.kind is ProviderErrorKind.INVALID_REQUEST
    assert sim.requests == []


# ------------------------------------------------------------- the two 403s


async def test_403_wrong_key_is_auth(sim, session) -> None:
    wrong = NovitaProvider(session, api_key="sk-wrong", base_url=sim.base_url, timeout=FAST)
    with pytest.raises(ProviderError) as caught:
        await wrong.submit(prepared())
    assert caught.value.kind is ProviderErrorKind.AUTH
    assert caught.value.provider_code == "INVALID_API_KEY"
    assert sim.tasks == {}


@pytest.mark.parametrize("fault", ["no_balance", "no_balance_nested"])
async def test_403_not_enough_balance_is_balance(provider, sim, fault: str) -> None:
    sim.inject("submit", fault)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert caught.value.kind is ProviderErrorKind.BALANCE
    assert caught.value.provider_code == "NOT_ENOUGH_BALANCE"


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        ("Forbidden", ProviderErrorKind.AUTH, "403"),
        ({"message": "Your balance is not enough"}, ProviderErrorKind.BALANCE, "403"),
        ({"code": "NOT_ENOUGH_BALANCE"}, ProviderErrorKind.BALANCE, "NOT_ENOUGH_BALANCE"),
    ],
    ids=["text", "message-only", "reason-as-code"],
)
async def test_403_in_other_shapes(provider, sim, body, kind, code) -> None:
    sim.inject("submit", Fault.http(403, body))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert (caught.value.kind, caught.value.provider_code) == (kind, code)


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("http_400", ProviderErrorKind.INVALID_REQUEST),
        ("http_429", ProviderErrorKind.RATE_LIMITED),
        ("http_500", ProviderErrorKind.UNAVAILABLE),
        ("http_502", ProviderErrorKind.UNAVAILABLE),
        ("http_503", ProviderErrorKind.UNAVAILABLE),
        ("access_denied", ProviderErrorKind.AUTH),
        ("hang", ProviderErrorKind.UNKNOWN_OUTCOME),
        ("malformed_json", ProviderErrorKind.UNKNOWN_OUTCOME),
        ("drop", ProviderErrorKind.UNKNOWN_OUTCOME),
        ("accept_then_drop", ProviderErrorKind.UNKNOWN_OUTCOME),
    ],
)
async def test_submit_faults(provider, sim, fault: str, kind: ProviderErrorKind) -> None:
    sim.inject("submit", fault)
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert caught.value.kind is kind
    assert len(sim.requests_to("submit")) == 1


async def test_429_keeps_retry_after(provider, sim) -> None:
    sim.inject("submit", "http_429")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(prepared())
    assert caught.value.retry_after == 2.0
    assert caught.value.provider_code == "RATE_LIMIT_EXCEEDED"


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


async def test_moderation_is_a_failed_task_with_a_reason(provider, sim, caplog) -> None:
    caplog.set_level(logging.WARNING)
    receipt = await provider.submit(prepared())
    sim.inject("query", "moderation")
    state = await provider.query(receipt.task_id, receipt.meta)
    assert state.phase is Phase.FAILED
    assert state.failure is not None and state.failure.kind is ProviderErrorKind.MODERATION
    assert "sensitive" in caplog.text  # reason strings are logged to learn the real ones
    assert KEY not in caplog.text


@pytest.mark.parametrize("fault", ["generation_failed", "canceled"])
async def test_other_failures_and_cancel_are_unavailable(provider, sim, fault: str) -> None:
    receipt = await provider.submit(prepared())
    sim.inject("query", fault)
    state = await provider.query(receipt.task_id, receipt.meta)
    assert state.phase is Phase.FAILED
    assert state.failure is not None and state.failure.kind is ProviderErrorKind.UNAVAILABLE


async def test_unknown_task_is_not_found(provider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.query("no-such-task", {})
    assert caught.value.kind is ProviderErrorKind.NOT_FOUND


# ---------------------------------------------------------------------- results


async def test_result_url_comes_from_a_fresh_query(provider, sim, session, clock) -> None:
    locator, meta = await run_to_success(provider, prepared())
    clock.advance(3601)  # video_url_ttl "3600"
    assert (await fetch(session, locator))[0] == 403
    queries = len(sim.requests_to("query"))
    fresh = await provider.result_url(locator, meta)
    assert len(sim.requests_to("query")) == queries + 1
    assert await fetch(session, fresh) == (200, sim.video)


async def test_result_url_falls_back_to_the_locator(provider, sim) -> None:
    locator, meta = await run_to_success(provider, prepared())
    sim.inject("query", "http_503")
    assert await provider.result_url(locator, meta) == locator
    assert await provider.result_url(locator, {}) == locator


async def test_task_state_reads_a_webhook_event_and_unknown_words(provider, sim) -> None:
    receipt = await provider.submit(prepared())
    sim.complete(receipt.task_id)
    state = provider.task_state(sim.webhook_body(receipt.task_id))
    assert state.phase is Phase.SUCCEEDED and state.locator
    odd = provider.task_state({"task": {"status": "TASK_STATUS_PAUSED"}})
    assert odd.phase is Phase.RUNNING
    with pytest.raises(ProviderError):
        provider.task_state({"videos": []})
