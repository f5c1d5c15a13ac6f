"""The Novita adapter against its simulator: bodies, the two 403s, faults, fresh URLs."""

from __future__ import annotations

import logging

import pytest

from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase
from hailuo.model.spec import Mode
from providers.novita import DEFAULT_PROMPT
from tests import media
from tests import provider_matrix as matrix
from tests.provider_matrix import Fails, Raises, fetch, raised, run_to_success, wrong_key_refusal
from tests.sims.base import Fault

KEY = "nv-test-key"
WEBP_URL = matrix.data_url("image/webp", media.make_image("WEBP", 640, 480))
sim, session, provider = matrix.adapter_fixtures("novita")

#: A WebP last frame, and fast pretreatment on: Novita takes both.
prepared = matrix.job_maker(
    "A lighthouse at dusk [Zoom out]", last_image=WEBP_URL, fast_pretreatment=True
)


# ------------------------------------------------------------------------ bodies


async def test_text_job_lifecycle_with_progress(provider, sim, session) -> None:
    receipt = await provider.submit(prepared(prompt_optimizer=False))
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
    error = await raised(provider.submit(prepared(Mode.IMAGE, resolution="512P")))
    assert error.kind is ProviderErrorKind.INVALID_REQUEST
    assert sim.requests == []


# ------------------------------------------------------------- the two 403s


async def test_403_wrong_key_is_auth(sim, session) -> None:
    error = await wrong_key_refusal("novita", sim, session, prepared())
    assert error.provider_code == "INVALID_API_KEY"


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
    error = await raised(provider.submit(prepared()))
    assert (error.kind, error.provider_code) == (kind, code)


# ---------------------------------------------------------------------- faults

#: 403 is a wrong key (above) or an empty account, flat or nested under "error"; moderation
#: is a failed task, never a submit error.
FAULTS = [
    ("submit", "no_balance", Raises(ProviderErrorKind.BALANCE, "NOT_ENOUGH_BALANCE")),
    ("submit", "no_balance_nested", Raises(ProviderErrorKind.BALANCE, "NOT_ENOUGH_BALANCE")),
    ("submit", "access_denied", Raises(ProviderErrorKind.AUTH)),
    ("submit", "http_400", Raises(ProviderErrorKind.INVALID_REQUEST)),
    (
        "submit",
        "http_429",
        Raises(ProviderErrorKind.RATE_LIMITED, "RATE_LIMIT_EXCEEDED", retry_after=2.0),
    ),
    ("submit", "http_500", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("submit", "http_502", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("submit", "http_503", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("submit", "hang", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("submit", "malformed_json", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("submit", "drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("submit", "accept_then_drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("query", "http_500", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "http_429", Raises(ProviderErrorKind.RATE_LIMITED)),
    ("query", "hang", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "malformed_json", Raises(ProviderErrorKind.BAD_REPLY)),
    ("query", "moderation", Fails(ProviderErrorKind.MODERATION)),
    ("query", "generation_failed", Fails(ProviderErrorKind.UNAVAILABLE)),
    ("query", "canceled", Fails(ProviderErrorKind.UNAVAILABLE)),
]


@matrix.fault_cases(FAULTS)
async def test_fault_is_read_as(provider, sim, endpoint, fault, expected) -> None:
    await matrix.check_fault(provider, sim, prepared(), endpoint, fault, expected)


async def test_moderation_reason_is_logged_without_the_key(provider, sim, caplog) -> None:
    caplog.set_level(logging.WARNING)
    receipt = await provider.submit(prepared())
    sim.inject("query", "moderation")
    await provider.query(receipt.task_id, receipt.meta)
    assert "sensitive" in caplog.text  # reason strings are logged to learn the real ones
    assert KEY not in caplog.text


async def test_unknown_task_is_not_found(provider) -> None:
    error = await raised(provider.query("no-such-task", {}))
    assert error.kind is ProviderErrorKind.NOT_FOUND


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
