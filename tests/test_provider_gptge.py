"""The gpt.ge adapter against its simulator: both query shapes, the fallback path, errors."""

from __future__ import annotations

import pytest

from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase
from hailuo.model.spec import Mode
from tests import provider_matrix as matrix
from tests.provider_matrix import Fails, Raises, fetch, raised, run_to_success, wrong_key_refusal
from tests.sims.base import Fault

KEY = "ge-test-key"
sim, session, provider = matrix.adapter_fixtures("gptge")

prepared = matrix.job_maker("A girl rides away [Truck right], then [Pull out]")


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
    locator, _ = await run_to_success(provider, prepared())
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

#: MiniMax's base_resp codes pass through (1027, a failed generation, is moderation); the
#: gateway's own errors come OpenAI-style with string codes.
FAULTS = [
    ("submit", "rate_limit", Raises(ProviderErrorKind.RATE_LIMITED, "1002")),
    ("submit", "no_balance", Raises(ProviderErrorKind.BALANCE, "1008")),
    ("submit", "sensitive_prompt", Raises(ProviderErrorKind.MODERATION, "1026")),
    ("submit", "invalid_params", Raises(ProviderErrorKind.INVALID_REQUEST, "2013")),
    ("submit", "gateway_no_balance", Raises(ProviderErrorKind.BALANCE, "insufficient_user_quota")),
    ("submit", "gateway_bad_key", Raises(ProviderErrorKind.AUTH, "invalid_api_key")),
    ("submit", "http_429", Raises(ProviderErrorKind.RATE_LIMITED, "rate_limit_exceeded")),
    ("submit", "http_500", Raises(ProviderErrorKind.UNAVAILABLE, "upstream_error")),
    ("submit", "http_502", Raises(ProviderErrorKind.UNAVAILABLE, "upstream_error")),
    ("submit", "http_503", Raises(ProviderErrorKind.UNAVAILABLE, "new_api_error")),
    ("submit", "hang", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("submit", "malformed_json", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("submit", "drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("submit", "accept_then_drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("query", "http_500", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "rate_limit", Raises(ProviderErrorKind.RATE_LIMITED)),
    ("query", "hang", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "malformed_json", Raises(ProviderErrorKind.BAD_REPLY)),
    ("query", "generation_failed", Fails(ProviderErrorKind.MODERATION, "1027")),
]


@matrix.fault_cases(FAULTS)
async def test_fault_is_read_as(provider, sim, endpoint, fault, expected) -> None:
    await matrix.check_fault(provider, sim, prepared(), endpoint, fault, expected)


async def test_wrong_key_is_auth(sim, session) -> None:
    await wrong_key_refusal("gptge", sim, session, prepared())


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"error": {"message": "该令牌额度已用尽", "type": "new_api_error"}}, "balance"),
        ({"error": {"message": "boom", "type": "weird", "code": ""}}, "bad_reply"),
    ],
)
async def test_error_object_on_http_200(provider, sim, body, kind: str) -> None:
    sim.inject("submit", Fault.http(200, body))
    assert (await raised(provider.submit(prepared()))).kind.value == kind


async def test_expired_url_is_replaced_by_a_new_retrieve(provider, sim, session, clock) -> None:
    file_id, _ = await run_to_success(provider, prepared())
    old = await provider.result_url(file_id, {})
    clock.advance(9 * 3600 + 1)
    assert (await fetch(session, old))[0] == 403
    fresh = await provider.result_url(file_id, {})
    assert await fetch(session, fresh) == (200, sim.video)


async def test_retrieve_error_is_raised(provider, sim) -> None:
    file_id, _ = await run_to_success(provider, prepared())
    sim.inject("retrieve", Fault("api_error", code=1000, msg="unknown error"))
    error = await raised(provider.result_url(file_id, {}))
    assert error.kind is ProviderErrorKind.UNAVAILABLE
