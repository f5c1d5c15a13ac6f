"""The Freepik adapter against its simulator: bodies, tiers, faults, results, webhook bodies."""

from __future__ import annotations

import base64
import logging

import pytest

from hailuo.model.config import ProviderSettings, Secret
from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase
from hailuo.model.spec import Mode
from hailuo.web.callbacks import freepik_signature_ok
from providers.freepik import DEFAULT_PROMPT, MAGNIFIC_KEY_HEADER, FreepikProvider, key_header_for
from providers.registry import build_providers
from tests import provider_matrix as matrix
from tests.provider_matrix import (
    JPEG,
    PNG,
    Fails,
    Raises,
    fetch,
    raised,
    run_to_success,
    wrong_key_refusal,
)
from tests.sims.freepik import FreepikSimulator

KEY = "fp-test-key"
sim, session, provider = matrix.adapter_fixtures("freepik")

prepared = matrix.job_maker("A cat surfing [Pan left,Pedestal up]")


# ------------------------------------------------------------------------ bodies


async def test_text_job_lifecycle_and_download(provider, sim, session) -> None:
    receipt = await provider.submit(prepared())
    assert receipt.meta == {"tier": "768p", "task_id": receipt.task_id}
    states = [await provider.query(receipt.task_id, receipt.meta) for _ in range(3)]
    assert [s.phase for s in states] == [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED]
    assert [s.raw_status for s in states] == ["CREATED", "IN_PROGRESS", "COMPLETED"]
    assert all(s.progress is None for s in states)  # Freepik reports none

    url = await provider.result_url(states[-1].locator or "", receipt.meta)
    assert KEY not in url
    assert await fetch(session, url) == (200, sim.video)
    assert sim.download_auth_headers_seen == []
    assert sim.violations == []
    body = sim.submits[0]
    assert body == {
        "prompt": "A cat surfing [Pan left,Pedestal up]",
        "prompt_optimizer": True,
        "duration": 6,
    }
    assert sim.requests_to("submit")[0].path.endswith("/minimax-hailuo-02-768p")
    assert all(KEY not in str(r.headers) for r in sim.requests)


async def test_image_job_without_prompt_sends_default_and_bare_base64(provider, sim) -> None:
    await run_to_success(provider, prepared(Mode.IMAGE, "", duration=10))
    body = sim.submits[0]
    assert body["prompt"] == DEFAULT_PROMPT
    assert base64.b64decode(body["first_frame_image"]) == PNG
    assert body["duration"] == 10
    assert "last_frame_image" not in body
    assert sim.violations == []


async def test_first_last_frame_body_passes_the_schema(provider, sim) -> None:
    await run_to_success(provider, prepared(Mode.FIRST_LAST, "Morph [推进]"))
    body = sim.submits[0]
    assert body["prompt"] == "Morph [Push in]"  # Chinese commands are sent in English
    assert base64.b64decode(body["last_frame_image"]) == JPEG
    assert sim.violations == []


async def test_1080p_goes_to_its_own_endpoint_and_is_queried_there(provider, sim) -> None:
    _, meta = await run_to_success(provider, prepared(resolution="1080P"))
    assert meta["tier"] == "1080p"
    api_calls = [r for r in sim.requests if r.endpoint in ("submit", "query")]
    assert {r.path.split("/")[4] for r in api_calls} == {"minimax-hailuo-02-1080p"}
    assert sim.violations == []


async def test_webhook_url_comes_from_the_callback(provider, sim) -> None:
    await provider.submit(prepared(callback_url="https://bot.example/cb/freepik/7"))
    assert sim.submits[0]["webhook_url"] == "https://bot.example/cb/freepik/7"
    assert sim.violations == []


def test_submit_body_is_pure(provider) -> None:
    job = prepared(Mode.FIRST_LAST)
    assert provider.submit_body(job) == provider.submit_body(job)


async def test_512p_is_refused_before_any_request(provider, sim) -> None:
    error = await raised(provider.submit(prepared(Mode.IMAGE, resolution="512P")))
    assert error.kind is ProviderErrorKind.INVALID_REQUEST
    assert sim.requests == []


# --------------------------------------------------------------- tier fallback


@pytest.mark.parametrize("duration", [6, 10])
async def test_provider_correct_768p_404_is_refused_never_sent_to_1080p(
    provider, sim, caplog, duration
) -> None:
    sim.retire("768p")
    caplog.set_level(logging.WARNING)
    error = await raised(provider.submit(prepared(duration=duration)))
    assert error.kind is ProviderErrorKind.UNSUPPORTED  # this provider, not the job
    assert error.provider_code == "tier"
    paths = [r.path for r in sim.requests_to("submit")]
    assert [p.rsplit("-", 1)[1] for p in paths] == ["768p"]  # no second POST at 1080p
    assert sim.tasks == {}
    assert "768p endpoint answered 404" in caplog.text
    assert sim.violations == []


# ---------------------------------------------------------------------- faults

#: FAILED carries no reason, so a moderation refusal reads as any other failure.
FAULTS = [
    ("submit", "http_400", Raises(ProviderErrorKind.INVALID_REQUEST)),
    ("submit", "http_401", Raises(ProviderErrorKind.AUTH)),
    ("submit", "http_402", Raises(ProviderErrorKind.BALANCE, "402")),
    ("submit", "http_429", Raises(ProviderErrorKind.RATE_LIMITED, "429", retry_after=3.0)),
    ("submit", "http_500", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("submit", "http_502", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("submit", "http_503", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("submit", "http_503_rate", Raises(ProviderErrorKind.RATE_LIMITED)),
    ("submit", "hang", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("submit", "malformed_json", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("submit", "drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("submit", "accept_then_drop", Raises(ProviderErrorKind.UNKNOWN_OUTCOME)),
    ("query", "http_500", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "http_503", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "http_429", Raises(ProviderErrorKind.RATE_LIMITED)),
    ("query", "hang", Raises(ProviderErrorKind.UNAVAILABLE)),
    ("query", "malformed_json", Raises(ProviderErrorKind.BAD_REPLY)),
    ("query", "generation_failed", Fails(ProviderErrorKind.UNAVAILABLE)),
    ("query", "moderation", Fails(ProviderErrorKind.UNAVAILABLE)),
]


@matrix.fault_cases(FAULTS)
async def test_fault_is_read_as(provider, sim, endpoint, fault, expected) -> None:
    await matrix.check_fault(provider, sim, prepared(), endpoint, fault, expected)


async def test_429_and_402_are_logged_without_the_key(provider, sim, caplog) -> None:
    caplog.set_level(logging.WARNING)
    sim.inject("submit", "http_429")
    sim.inject("submit", "http_402")
    await raised(provider.submit(prepared()))
    await raised(provider.submit(prepared()))
    assert "HTTP 402 body (undocumented)" in caplog.text
    assert KEY not in caplog.text


async def test_accept_then_drop_leaves_a_task_at_the_provider(provider, sim) -> None:
    sim.inject("submit", "accept_then_drop")
    await raised(provider.submit(prepared()))
    assert len(sim.tasks) == 1


async def test_wrong_key_is_auth(sim, session) -> None:
    await wrong_key_refusal("freepik", sim, session, prepared())


async def test_query_dropped_twice_is_unavailable(provider, sim) -> None:
    receipt = await provider.submit(prepared())
    sim.inject("query", "drop", times=2)  # aiohttp heals one drop of a GET by itself
    error = await raised(provider.query(receipt.task_id, receipt.meta))
    assert error.kind is ProviderErrorKind.UNAVAILABLE


async def test_unknown_task_is_not_found(provider) -> None:
    error = await raised(provider.query("046b6c7f-0000-0000-0000-000000000000", {"tier": "768p"}))
    assert error.kind is ProviderErrorKind.NOT_FOUND


# ---------------------------------------------------------------------- results


async def test_expired_url_is_replaced_by_a_fresh_query(provider, sim, session, clock) -> None:
    locator, meta = await run_to_success(provider, prepared())
    clock.advance(3601)
    assert (await fetch(session, locator))[0] == 403
    fresh = await provider.result_url(locator, meta)
    assert fresh != locator
    assert await fetch(session, fresh) == (200, sim.video)


async def test_result_url_falls_back_to_the_locator_when_the_query_fails(provider, sim) -> None:
    locator, meta = await run_to_success(provider, prepared())
    sim.inject("query", "http_503")
    assert await provider.result_url(locator, meta) == locator


def test_task_state_reads_webhook_bodies_and_unknown_words(provider, caplog) -> None:
    caplog.set_level(logging.WARNING)
    body = {"task_id": "t", "status": "COMPLETED", "generated": ["https://cdn.example/v.mp4"]}
    assert provider.task_state(body).locator == "https://cdn.example/v.mp4"
    state = provider.task_state({"data": {"task_id": "t", "status": "SCHEDULED"}})
    assert state.phase is Phase.RUNNING and state.raw_status == "SCHEDULED"
    assert "unknown status 'SCHEDULED'" in caplog.text
    with pytest.raises(ProviderError) as caught:
        provider.task_state({"task_id": "t", "status": "COMPLETED", "generated": []})
    assert caught.value.kind is ProviderErrorKind.BAD_REPLY


async def test_simulated_webhook_is_signed_as_the_callback_route_checks(
    sim, provider, clock
) -> None:
    receipt = await provider.submit(prepared())
    headers, raw = sim.signed_webhook(receipt.task_id, "fp-hook-secret")
    secret = Secret("fp-hook-secret")
    assert freepik_signature_ok(secret, headers, raw, clock())
    assert not freepik_signature_ok(secret, headers, raw.replace(b"CREATED", b"FAILED"), clock())
    assert provider.task_state(sim.webhook_body(receipt.task_id)).phase is Phase.QUEUED


# ---------------------------------------------------------------- auth header


@pytest.mark.parametrize(
    ("base_url", "header"),
    [
        ("https://api.freepik.com", "x-freepik-api-key"),
        ("https://api.magnific.com", "x-magnific-api-key"),
        ("https://magnific.com", "x-magnific-api-key"),
        ("https://notmagnific.com", "x-freepik-api-key"),
    ],
)
def test_key_header_follows_the_host(base_url: str, header: str) -> None:
    assert key_header_for(base_url) == header


async def test_magnific_header_is_sent_when_configured(clock, session) -> None:
    async with FreepikSimulator(clock=clock, key_header=MAGNIFIC_KEY_HEADER) as sim:
        provider = FreepikProvider(
            session, api_key=KEY, base_url=sim.base_url, key_header=MAGNIFIC_KEY_HEADER
        )
        locator, meta = await run_to_success(provider, prepared())
        assert await fetch(session, await provider.result_url(locator, meta)) == (200, sim.video)
        assert sim.download_auth_headers_seen == []


async def test_registry_builds_freepik_with_the_host_header(session) -> None:
    settings = ProviderSettings("freepik", Secret(KEY), "https://api.magnific.com", None)
    built = build_providers((settings,), session)
    provider = built["freepik"]
    assert isinstance(provider, FreepikProvider)
    assert provider.key_header == MAGNIFIC_KEY_HEADER
