"""The odkkk (EvoLink) adapter against its simulator: modes by image count, error codes."""

from __future__ import annotations

import pytest

from hailuo.model.errors import ProviderErrorKind
from hailuo.model.provider import Phase
from hailuo.model.spec import Mode
from tests import provider_matrix as matrix
from tests.provider_matrix import Fails, Raises, fetch, raised, run_to_success, wrong_key_refusal
from tests.sims.base import Fault

KEY = "od-test-key"
sim, session, provider = matrix.adapter_fixtures("odkkk")

prepared = matrix.job_maker("A fox in snow [Tracking shot]")


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

#: HTTP errors carry an integer ``error.code``; a failed task's code is a string, or an
#: integer as seed 002 also types it.
FAULTS = [
    ("submit", "http_400", Raises(ProviderErrorKind.INVALID_REQUEST, "400")),
    ("submit", "http_401", Raises(ProviderErrorKind.AUTH, "401")),
    ("submit", "http_402", Raises(ProviderErrorKind.BALANCE, "402")),
    ("submit", "http_429", Raises(ProviderErrorKind.RATE_LIMITED, "429", retry_after=2.0)),
    ("submit", "http_500", Raises(ProviderErrorKind.UNAVAILABLE, "500")),
    ("submit", "http_502", Raises(ProviderErrorKind.UNAVAILABLE, "502")),
    ("submit", "http_503", Raises(ProviderErrorKind.UNAVAILABLE, "503")),
    ("submit", "hang", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("submit", "malformed_json", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("submit", "drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("submit", "accept_then_drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME, None)),
    ("query", "http_500", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "http_429", Raises(ProviderErrorKind.RATE_LIMITED)),
    ("query", "hang", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "malformed_json", Raises(ProviderErrorKind.BAD_REPLY)),
    ("query", "moderation", Fails(ProviderErrorKind.MODERATION, "content_policy_violation")),
    (
        "query",
        "generation_failed",
        Fails(ProviderErrorKind.UNAVAILABLE, "generation_failed_no_content"),
    ),
    ("query", "generation_failed_int", Fails(ProviderErrorKind.UNAVAILABLE, "500")),
]


@matrix.fault_cases(FAULTS)
async def test_fault_is_read_as(provider, sim, endpoint, fault, expected) -> None:
    await matrix.check_fault(provider, sim, prepared(), endpoint, fault, expected)


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
    assert (await raised(provider.submit(prepared()))).kind is kind


async def test_wrong_key_is_auth(sim, session) -> None:
    await wrong_key_refusal("odkkk", sim, session, prepared())


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


@pytest.mark.parametrize("task_id", ["123", "task-unified-0-missing"])
async def test_bad_or_unknown_task_id_is_not_found(provider, task_id: str) -> None:
    assert (await raised(provider.query(task_id, {}))).kind is ProviderErrorKind.NOT_FOUND


async def test_cancelled_callback_and_unknown_word(provider, sim) -> None:
    receipt = await provider.submit(prepared())
    sim.complete(receipt.task_id)
    assert provider.task_state(sim.webhook_body(receipt.task_id)).phase is Phase.SUCCEEDED
    assert provider.task_state({"status": "cancelled"}).phase is Phase.FAILED
    assert provider.task_state({"status": "queued_upstream"}).phase is Phase.RUNNING


async def test_expired_result_url_is_reported_by_the_cdn(provider, sim, session, clock) -> None:
    url, _ = await run_to_success(provider, prepared())
    clock.advance(24 * 3600 + 1)
    assert (await fetch(session, url))[0] == 403
