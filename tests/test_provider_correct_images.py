"""``pytest -k provider_correct``: the bot serves the prepared image at a signed URL.

For a provider whose image fields take URLs (odkkk), with ``HAILUO_PUBLIC_URL`` set, the
job's image goes as a URL of the bot's own public HTTP side (``hailuo.web.images``): it
serves the stored bytes while the job is with the provider, and 404 once the job is
over, past its expiry, or for a URL whose signature or parts were changed. Here with
a fake clock through the core; through Discord and the simulators in the e2e below.
"""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.web.callbacks import CallbackTokens
from hailuo.web.images import IMAGE_URL_SECONDS, ImageLinks
from providers.registry import TABLE
from tests import media
from tests.discord_sim import SimAttachment
from tests.e2e import bot_env, card_shows, channel, running_bot
from tests.provider_matrix import provider_core
from tests.sims.odkkk import OdkkkSimulator

pytestmark = pytest.mark.timeout(60)

PNG = media.make_image("PNG", 640, 480)


@pytest.fixture
async def world(db, clock):
    async with provider_core("odkkk", db, clock, polls_until_done=None) as (sim, core):
        tokens = CallbackTokens(db.jobs)
        await tokens.load()
        links = ImageLinks(tokens, db.jobs, clock, "https://bot.example.org/", TABLE, lifetime=60)
        app = web.Application()
        links.mount(app)
        async with TestClient(TestServer(app)) as client:
            yield sim, core, links, client


async def test_provider_correct_image_url_default_lifetime(db, clock) -> None:
    tokens = CallbackTokens(db.jobs)
    await tokens.load()
    links = ImageLinks(tokens, db.jobs, clock, "https://bot.example.org", TABLE)
    assert links.lifetime == IMAGE_URL_SECONDS >= 3600  # a provider's queue may be long
    assert TABLE["odkkk"].images_as_url
    assert not any(cap.images_as_url for name, cap in TABLE.items() if name != "odkkk")


def path_of(url: str) -> str:
    return url.removeprefix("https://bot.example.org")


async def test_provider_correct_signed_image_served_then_gone_with_the_job(world, clock) -> None:
    sim, core, links, client = world
    job = await _job(core)
    assert links.url("minimax", job, "first") is None  # takes data URLs
    job = await core.run_until(job.id, JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.FAILED)
    assert job.status is not JobStatus.FAILED, (job.failure_rule, job.failure_params)
    url = links.url("odkkk", job, "first")
    assert url is not None and url.startswith("https://bot.example.org/images/")
    reply = await client.get(path_of(url))
    assert reply.status == 200 and reply.content_type == "image/png"
    served = await reply.read()
    stored = (await core.jobs.images(job.id))["first"]
    assert served == stored.data

    # A changed part or signature is a bare 404.
    parts = path_of(url).split("/")
    for index, value in ((2, str(job.id + 1)), (3, "last"), (4, "9999999999"), (5, "A" * 32)):
        changed = "/".join([*parts[:index], value, *parts[index + 1 :]])
        assert (await client.get(changed)).status == 404, changed

    # Past its expiry it is gone, even while the job runs.
    clock.advance(61)
    assert (await client.get(path_of(url))).status == 404
    fresh = links.url("odkkk", job, "first")
    assert fresh is not None and (await client.get(path_of(fresh))).status == 200

    # Once the job is over, every URL of it is gone.
    sim.complete(next(iter(sim.tasks)))
    await core.run_until(job.id, JobStatus.DELIVERED)
    assert (await client.get(path_of(fresh))).status == 404


async def _job(core):
    return await core.new_job(
        JobSpec(mode=Mode.IMAGE, prompt="waves"), images={"first": ("image/png", PNG)}
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_provider_correct_signed_image_url_e2e(discord_sim, minimax, tmp_path) -> None:
    port = free_port()
    async with OdkkkSimulator(polls_until_done=None) as odkkk:
        env = bot_env(
            discord_sim,
            tmp_path / "bot.sqlite3",
            HAILUO_PROVIDERS="odkkk",
            ODKKK_API_KEY=odkkk.api_key,
            ODKKK_BASE_URL=odkkk.api_base,
            HAILUO_HTTP_PORT=str(port),
            HAILUO_PUBLIC_URL=f"http://127.0.0.1:{port}",
            HAILUO_METRICS_PORT="0",
        )
        async with running_bot(env), aiohttp.ClientSession() as http:
            inter = await discord_sim.send_slash(
                ["hailuo", "animate"],
                {"prompt": "waves"},
                attachments={"image": SimAttachment(PNG, "a.png", "image/png", 640, 480, len(PNG))},
            )
            await inter.wait_response()
            await discord_sim.wait_for(lambda: odkkk.submits)
            url = odkkk.submits[0]["image_urls"][0]
            assert url.startswith(f"http://127.0.0.1:{port}/images/")
            async with http.get(url) as reply:
                assert reply.status == 200 and reply.content_type == "image/png"
                assert (await reply.read())[:8] == b"\x89PNG\r\n\x1a\n"
            odkkk.complete(next(iter(odkkk.tasks)))
            await discord_sim.wait_for(lambda: channel(discord_sim).videos())
            await card_shows(discord_sim, inter.original_message, "Delivered")
            async with http.get(url) as reply:
                assert reply.status == 404  # expired with the job
        assert odkkk.violations == []
