"""Provider callbacks on the bot's own HTTP server: tokens, challenge, signatures, no trust."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from hailuo.model.config import Secret
from hailuo.model.job import Job
from hailuo.model.status import JobStatus
from hailuo.web.callbacks import (
    CallbackTokens,
    accepting,
    freepik_signature_ok,
)
from hailuo.web.server import HealthServer
from providers.minimax import MiniMaxProvider
from tests.core import Core, build_core, core_settings
from tests.pg_server import BOTH_ENGINES
from tests.sims.minimax import MiniMaxSimulator

ENGINES = BOTH_ENGINES

PUBLIC = "https://bot.example.org"
RAW_KEY = b"freepik-webhook-key-0123456789ab"
FREEPIK_SECRET = Secret("whsec_" + base64.b64encode(RAW_KEY).decode())


@dataclass
class Site:
    core: Core
    sim: MiniMaxSimulator
    tokens: CallbackTokens
    http: aiohttp.ClientSession
    base: str
    #: The one provider that serves a spec (the core's ``serves`` reads it at each submit).
    route: dict[str, str]

    async def post(self, path: str, body: object, headers: dict[str, str] | None = None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.http.post(f"{self.base}{path}", data=raw, headers=headers or {}) as resp:
            return resp.status, await resp.json()

    def path(self, provider: str, job_id: int) -> str:
        return f"/callbacks/{provider}/{self.tokens.token(provider, job_id)}"


@pytest.fixture
async def sim(clock) -> AsyncIterator[MiniMaxSimulator]:
    async with MiniMaxSimulator(clock=clock, polls_until_done=None) as simulator:
        yield simulator
    assert simulator.violations == []


@pytest.fixture
async def site(db, clock, sim) -> AsyncIterator[Site]:
    async with aiohttp.ClientSession() as session:
        # "freepik" is the MiniMax simulator under Freepik's name: only the route differs.
        providers = {
            name: MiniMaxProvider(session, api_key=sim.api_key, base_url=sim.base_url)
            for name in ("minimax", "freepik")
        }
        route = {"provider": "minimax"}
        # The bot's own wiring: the public URL turns the callbacks on (hailuo.assembly).
        settings = core_settings(public_url=PUBLIC, freepik_webhook_secret=FREEPIK_SECRET)
        core = build_core(
            db,
            clock,
            session,
            providers,
            settings=settings,
            serves=lambda name, spec: name == route["provider"],
        )
        tokens = core.assembled.tokens
        await core.assembled.start()
        server = HealthServer(
            host="127.0.0.1",
            port=0,
            gateway_connected=lambda: True,
            database_ok=db.ping,
            jobs_by_state=core.jobs.count_by_status,
            metrics=core.metrics,
            mounts=core.assembled.public_mounts,
        )
        await server.start()
        try:
            yield Site(core, sim, tokens, session, f"http://127.0.0.1:{server.bound_port}", route)
        finally:
            await core.worker.drain()
            await server.close()


async def submitted(site: Site, provider: str = "minimax") -> Job:
    site.route["provider"] = provider
    job = await site.core.new_job()
    await site.core.worker.tick()
    fresh = await site.core.jobs.get(job.id)
    assert fresh is not None and fresh.status is JobStatus.SUBMITTED and fresh.provider == provider
    return fresh


def freepik_headers(body: bytes, timestamp: float, *, key: bytes = RAW_KEY) -> dict[str, str]:
    stamp = str(int(timestamp))
    signed = f"msg_2abc.{stamp}.".encode() + body
    sig = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": "msg_2abc",
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{sig}",
    }


async def test_each_submit_carries_its_own_callback_url(site: Site) -> None:
    job = await submitted(site)
    url = site.sim.submits[0]["callback_url"]
    assert url == f"{PUBLIC}/callbacks/minimax/{site.tokens.token('minimax', job.id)}"
    token = url.rsplit("/", 1)[1]
    assert site.tokens.job_id("minimax", token) == job.id
    assert site.tokens.job_id("freepik", token) is None  # bound to one provider


async def test_tokens_survive_a_restart(site: Site) -> None:
    again = CallbackTokens(site.core.jobs)
    await again.load()
    assert again.token("minimax", 7) == site.tokens.token("minimax", 7)


async def test_minimax_challenge_is_echoed_without_waiting_for_the_database(site: Site, db) -> None:
    job = await submitted(site)
    queries = len(site.sim.requests_to("query"))
    async with db.transaction():  # the database is busy: the echo must not wait for it
        status, body = await site.post(site.path("minimax", job.id), {"challenge": "c-123"})
    assert (status, body) == (200, {"challenge": "c-123"})
    await site.core.worker.drain()
    assert len(site.sim.requests_to("query")) == queries


async def test_a_status_callback_triggers_a_query_not_a_state_change(site: Site) -> None:
    job = await submitted(site)
    lie = {
        "task_id": job.provider_task_id,
        "status": "success",
        "file_id": "205258526306433",
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }
    status, _ = await site.post(site.path("minimax", job.id), lie)
    assert status == 200
    await site.core.worker.drain()
    assert len(site.sim.requests_to("query")) == 1  # asked the provider instead
    fresh = await site.core.jobs.get(job.id)
    assert fresh is not None and fresh.status is not JobStatus.SUCCEEDED
    assert fresh.result_locator is None
    # When the provider really has it, the callback brings it in without waiting for a poll.
    assert job.provider_task_id is not None
    site.sim.complete(job.provider_task_id)
    await site.post(site.path("minimax", job.id), lie)
    await site.core.worker.drain()
    fresh = await site.core.jobs.get(job.id)
    assert fresh is not None and fresh.status is JobStatus.SUCCEEDED


@pytest.mark.parametrize(
    "path",
    [
        "/callbacks/minimax/1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/callbacks/minimax/not-a-token",
        "/callbacks/novita/{token}",  # a provider that gets no callback URL
        "/callbacks/gptge/{token}",  # not configured here
    ],
)
async def test_a_wrong_token_is_404_and_changes_nothing(site: Site, path: str) -> None:
    job = await submitted(site)
    token = site.tokens.token("minimax", job.id)
    status, _ = await site.post(path.format(token=token), {"challenge": "x"})
    assert status == 404
    await site.core.worker.drain()
    assert site.sim.requests_to("query") == []


async def test_freepik_good_signature_is_accepted_and_triggers_a_query(site: Site) -> None:
    job = await submitted(site, "freepik")
    body = json.dumps({"task_id": job.provider_task_id, "status": "COMPLETED"}).encode()
    status, _ = await site.post(
        site.path("freepik", job.id), body, freepik_headers(body, site.core.clock())
    )
    assert status == 200
    await site.core.worker.drain()
    assert len(site.sim.requests_to("query")) == 1
    fresh = await site.core.jobs.get(job.id)
    assert fresh is not None and fresh.status is not JobStatus.SUCCEEDED  # the body is not trusted


@pytest.mark.parametrize("case", ["wrong_key", "tampered_body", "stale", "future", "missing"])
async def test_freepik_bad_signature_is_refused_and_changes_nothing(site: Site, case: str) -> None:
    job = await submitted(site, "freepik")
    body = json.dumps({"task_id": job.provider_task_id, "status": "COMPLETED"}).encode()
    now = site.core.clock()
    headers = {
        "wrong_key": freepik_headers(body, now, key=b"another-key"),
        "tampered_body": freepik_headers(body + b" ", now),
        "stale": freepik_headers(body, now - 301),
        "future": freepik_headers(body, now + 301),
        "missing": {},
    }[case]
    before = await site.core.jobs.get(job.id)
    status, _ = await site.post(site.path("freepik", job.id), body, headers)
    assert status == 401
    await site.core.worker.drain()
    assert site.sim.requests_to("query") == []
    assert await site.core.jobs.get(job.id) == before


def test_freepik_signature_list_accepts_any_match_and_plain_secrets() -> None:
    body = b'{"status":"COMPLETED"}'
    good = freepik_headers(body, 1000)
    listed = {**good, "webhook-signature": "v1,AAAA v1a,bm9wZQ== " + good["webhook-signature"]}
    assert freepik_signature_ok(FREEPIK_SECRET, listed, body, 1000)
    assert freepik_signature_ok(FREEPIK_SECRET, good, body, 1000 + 300)
    assert not freepik_signature_ok(FREEPIK_SECRET, good, body, 1000 + 301)
    plain = freepik_headers(body, 1000, key=b"plain-secret")
    assert freepik_signature_ok(Secret("plain-secret"), plain, body, 1000)


def test_only_providers_that_call_back_get_a_url() -> None:
    names = ["minimax", "freepik", "novita", "odkkk", "gptge"]
    assert accepting(names, None) == {"minimax", "gptge"}
    assert accepting(names, FREEPIK_SECRET) == {"minimax", "gptge", "freepik"}
