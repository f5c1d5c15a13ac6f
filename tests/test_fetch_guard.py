"""The result downloader: the address connected to is the one vetted, and only MP4s pass.

Everything runs on loopback with an injected resolver (no real DNS, no real
network). A "public" address cannot be served from loopback, so where a test
needs a fetch that succeeds from a public address it uses 127.0.0.2 as the
stand-in: its policy is the real one plus that one address.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from hailuo.media.downloads import (
    Downloader,
    DownloadError,
    NotAVideoError,
    RefusedAddressError,
    mp4_problem,
)
from hailuo.media.netguard import IPAddress, VettingResolver, address_allowed
from hailuo.model.status import JobStatus
from providers.minimax import MiniMaxProvider
from tests import media
from tests.core import build_core
from tests.provider_matrix import ledger_kinds
from tests.sims.minimax import MiniMaxSimulator

pytestmark = pytest.mark.timeout(60)

PUBLIC_STAND_IN = ipaddress.ip_address("127.0.0.2")
MP4 = media.make_mp4()
HTML = b"<!doctype html><html><body><h1>Access denied</h1></body></html>\n" * 20
NOISE = random.Random(11).randbytes(8192)


class ScriptedResolver(AbstractResolver):
    """Answers each look-up of a name with the next of its scripted answers (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        script = self.answers[host]
        addresses = script[min(self.calls.count(host), len(script) - 1)]
        self.calls.append(host)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class FileServer:
    """A loopback HTTP server that counts its requests and serves one body (or a redirect)."""

    def __init__(self, body: bytes = MP4, redirect: str | None = None) -> None:
        self.body = body
        self.redirect = redirect
        self.requests = 0
        self.hosts: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.hosts.append(request.headers.get("Host", ""))
        if self.redirect is not None:
            raise web.HTTPFound(self.redirect)
        return web.Response(body=self.body, content_type="video/mp4")

    async def start(self, host: str, port: int = 0) -> int:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def close(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FileServer, FileServer, int]]:
    """A "public" server on 127.0.0.2 and a loopback one on 127.0.0.1, on the same port."""
    public, loopback = FileServer(), FileServer()
    for _ in range(20):
        port = await public.start("127.0.0.2")
        try:
            await loopback.start("127.0.0.1", port)
        except OSError:
            await public.close()
            continue
        break
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    yield public, loopback, port
    await public.close()
    await loopback.close()


def stand_in_policy(address: IPAddress) -> bool:
    return address == PUBLIC_STAND_IN or address_allowed(address)


def downloader(resolver: AbstractResolver, tmp_path: Path, **kw: object) -> Downloader:
    options: dict = {"max_bytes": 10 * 2**20, "allow_private": False, "directory": tmp_path}
    options.update(kw)
    return Downloader(resolver=resolver, **options)


# -- rebinding ---------------------------------------------------------------------------


async def test_rebind_public_then_loopback_connects_only_to_the_vetted_answer(
    servers, tmp_path: Path
) -> None:
    public, loopback, port = servers
    resolver = ScriptedResolver({"video.example": [["127.0.0.2"], ["127.0.0.1"]]})
    fetcher = downloader(resolver, tmp_path, policy=stand_in_policy)
    video = await fetcher.fetch(f"http://video.example:{port}/v.mp4")
    try:
        assert video.path.read_bytes() == MP4
    finally:
        video.discard()
    # one look-up, and the connection went where that answer (the vetted one) pointed
    assert resolver.calls == ["video.example"]
    assert (public.requests, loopback.requests) == (1, 0)
    assert public.hosts == [f"video.example:{port}"]  # the name is kept for Host (and SNI)


async def test_rebind_public_then_loopback_is_refused_on_the_next_hop(
    servers, tmp_path: Path
) -> None:
    public, loopback, port = servers
    public.redirect = f"http://cdn.example:{port}/v.mp4"
    resolver = ScriptedResolver(
        {"video.example": [["127.0.0.2"], ["127.0.0.1"]], "cdn.example": [["127.0.0.1"]]}
    )
    fetcher = downloader(resolver, tmp_path, policy=stand_in_policy)
    with pytest.raises(RefusedAddressError):
        await fetcher.fetch(f"http://video.example:{port}/v.mp4")
    assert (public.requests, loopback.requests) == (1, 0)
    assert list(tmp_path.iterdir()) == []


async def test_rebind_one_answer_with_public_and_loopback_is_refused(
    servers, tmp_path: Path
) -> None:
    _, loopback, port = servers
    # a client that falls back to the second address when the first does not connect
    resolver = ScriptedResolver({"video.example": [["93.184.216.34", "127.0.0.1"]]})
    with pytest.raises(RefusedAddressError):
        await downloader(resolver, tmp_path).fetch(f"http://video.example:{port}/v.mp4")
    assert loopback.requests == 0


async def test_rebind_loopback_answer_refused_with_the_real_policy(servers, tmp_path: Path) -> None:
    _, loopback, port = servers
    resolver = ScriptedResolver({"video.example": [["127.0.0.1"]]})
    with pytest.raises(RefusedAddressError):
        await downloader(resolver, tmp_path).fetch(f"http://video.example:{port}/v.mp4")
    assert loopback.requests == 0


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{port}/v.mp4", "http://[::ffff:127.0.0.1]:{port}/v.mp4", "name"],
    ids=["ipv4-literal", "mapped-literal", "private-name"],
)
async def test_rebind_redirect_to_a_private_address_is_refused(
    servers, tmp_path: Path, target: str
) -> None:
    public, loopback, port = servers
    public.redirect = (
        f"http://intranet.example:{port}/v.mp4" if target == "name" else target.format(port=port)
    )
    resolver = ScriptedResolver(
        {"video.example": [["127.0.0.2"]], "intranet.example": [["10.0.0.7"]]}
    )
    fetcher = downloader(resolver, tmp_path, policy=stand_in_policy)
    with pytest.raises(RefusedAddressError):
        await fetcher.fetch(f"http://video.example:{port}/v.mp4")
    assert (public.requests, loopback.requests) == (1, 0)


#: IPv6 forms that carry a private IPv4 address (or lead somewhere private), each refused.
EMBEDDING_FORMS = {
    "mapped": "::ffff:127.0.0.1",
    "translated": "::ffff:0:7f00:1",
    "compatible": "::127.0.0.1",
    "compatible-private": "::10.1.2.3",
    "nat64": "64:ff9b::7f00:1",
    "nat64-private": "64:ff9b::c0a8:101",
    "nat64-local-use": "64:ff9b:1::808:808",
    "6to4": "2002:7f00:1::1",
    "6to4-private": "2002:c0a8:101::1",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
}


@pytest.mark.parametrize("form", EMBEDDING_FORMS.values(), ids=EMBEDDING_FORMS.keys())
async def test_rebind_ipv6_forms_that_embed_ipv4_are_refused(
    servers, tmp_path: Path, form: str
) -> None:
    _, loopback, port = servers
    assert not address_allowed(ipaddress.ip_address(form))
    # as a DNS answer (AAAA) ...
    resolver = ScriptedResolver({"video.example": [[form]]})
    with pytest.raises(RefusedAddressError):
        await downloader(resolver, tmp_path).fetch(f"http://video.example:{port}/v.mp4")
    # ... and as a literal in the URL, which no resolver sees
    with pytest.raises(RefusedAddressError):
        await downloader(resolver, tmp_path).fetch(f"http://[{form}]:{port}/v.mp4")
    assert loopback.requests == 0


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),  # each embedding form is judged by what it carries
        ("64:ff9b::808:808", True),
        ("2002:808:808::1", True),
        ("10.0.0.1", False),
        ("100.64.0.1", False),  # shared address space (carrier NAT)
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("ff0e::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::", False),
        ("::1", False),
    ],
)
def test_rebind_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address)) is allowed


async def test_rebind_vetting_resolver_passes_a_public_answer_through() -> None:
    inner = ScriptedResolver({"cdn.example": [["93.184.216.34", "2606:4700::1111"]]})
    vetting = VettingResolver(inner, address_allowed, owns_inner=False)
    answers = await vetting.resolve("cdn.example", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:4700::1111"]


async def test_rebind_allow_private_still_fetches_from_loopback(servers, tmp_path: Path) -> None:
    _, loopback, port = servers
    resolver = ScriptedResolver({"sim.example": [["127.0.0.1"]]})
    video = await downloader(resolver, tmp_path, allow_private=True).fetch(
        f"http://sim.example:{port}/v.mp4"
    )
    video.discard()
    assert loopback.requests == 1


# -- the bytes must be an MP4 -------------------------------------------------------------


def _ftyp(brand: bytes, size: int = 24) -> bytes:
    return size.to_bytes(4, "big") + b"ftyp" + brand + bytes(4) + b"isom" * ((size - 16) // 4)


@pytest.mark.parametrize(
    ("head", "ok"),
    [
        (MP4, True),
        (_ftyp(b"mp42"), True),
        (_ftyp(b"qt  "), True),
        (HTML, False),
        (NOISE, False),
        (media.make_image("PNG", 320, 320), False),
        (_ftyp(b"heic"), False),  # an HEIF picture
        (_ftyp(b"M4A "), False),  # audio only
        (_ftyp(b"isom", size=8), False),  # a box too short to hold a brand
        (b"\x00\x00", False),
    ],
    ids=["real", "mp42", "quicktime", "html", "noise", "png", "heic", "m4a", "short-box", "tiny"],
)
def test_ftyp_sniffing(head: bytes, ok: bool) -> None:
    assert (mp4_problem(head[:64]) is None) is ok


@pytest.mark.parametrize("body", [HTML, NOISE], ids=["html", "noise"])
async def test_ftyp_downloader_refuses_what_is_not_a_video(
    servers, tmp_path: Path, body: bytes
) -> None:
    _, loopback, port = servers
    loopback.body = body
    resolver = ScriptedResolver({"sim.example": [["127.0.0.1"]]})
    with pytest.raises(NotAVideoError) as refused:
        await downloader(resolver, tmp_path, allow_private=True).fetch(
            f"http://sim.example:{port}/v.mp4"
        )
    assert isinstance(refused.value, DownloadError) and not refused.value.too_large
    assert list(tmp_path.iterdir()) == []  # the file is not kept


@pytest.mark.parametrize("body", [HTML, NOISE], ids=["html", "noise"])
async def test_ftyp_a_page_served_as_the_result_is_never_posted(
    db, clock, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The real core and downloader against the MiniMax simulator serving a non-video."""
    async with MiniMaxSimulator(clock=clock, video=body) as sim, aiohttp.ClientSession() as http:
        provider = MiniMaxProvider(http, api_key="mm-test-key", base_url=sim.base_url)
        core = build_core(db, clock, http, {"minimax": provider})
        job = await core.new_job()
        job = await core.run_until(job.id, JobStatus.SUCCEEDED)
        # Retried, never posted, until the provider's file is gone (MiniMax: about 9 h).
        for _ in range(200):
            await core.worker.tick()
            core.clock.advance(400)
            fresh = await core.jobs.get(job.id)
            assert fresh is not None
            if fresh.status is not JobStatus.SUCCEEDED:
                break
    assert fresh.status is JobStatus.DELIVERY_FAILED
    assert core.notifier.posted == []
    assert sim.downloads > 10
    assert await ledger_kinds(db, job.id) == ["reserve", "refund"]
    assert "not an MP4" in caplog.text
