"""The five providers, each with its simulator and adapter, for tests that run them all alike.

``PROVIDERS`` and ``provider_core`` serve the worker tests; the second half serves the
adapter tests (``tests/test_provider_*.py``): fixtures, a job to send and a fault table.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hailuo.model.errors import ProviderError, ProviderErrorKind
from hailuo.model.provider import Phase, PreparedInput, Provider
from hailuo.model.spec import JobSpec, Mode
from providers.freepik import FreepikProvider
from providers.gptge import GptGeProvider
from providers.minimax import MiniMaxProvider
from providers.novita import NovitaProvider
from providers.odkkk import OdkkkProvider
from storage.db import Database
from storage.ledger import LedgerRepository
from tests import media
from tests.core import Core, build_core
from tests.sims.base import Fault
from tests.sims.freepik import FreepikSimulator
from tests.sims.gptge import GptGeSimulator
from tests.sims.minimax import MiniMaxSimulator
from tests.sims.novita import NovitaSimulator
from tests.sims.odkkk import OdkkkSimulator
from tests.support import FakeClock


@dataclass(frozen=True)
class Entry:
    simulator: type[Any]
    adapter: Callable[..., Provider]
    moderation_fault: tuple[str, str]  # (endpoint, fault) the provider uses to refuse content
    #: What that refusal reads as: Freepik documents no reason, so its refusal is a plain failure.
    moderation_rule: str = "provider.moderation"

    def base_url(self, sim: Any) -> str:
        return str(getattr(sim, "api_base", sim.base_url))


PROVIDERS: dict[str, Entry] = {
    "minimax": Entry(MiniMaxSimulator, MiniMaxProvider, ("query", "generation_failed")),
    "freepik": Entry(
        FreepikSimulator, FreepikProvider, ("query", "moderation"), "provider.unavailable"
    ),
    "novita": Entry(NovitaSimulator, NovitaProvider, ("query", "moderation")),
    "odkkk": Entry(OdkkkSimulator, OdkkkProvider, ("query", "moderation")),
    "gptge": Entry(GptGeSimulator, GptGeProvider, ("query", "generation_failed")),
}


@contextlib.asynccontextmanager
async def provider_core(
    name: str,
    db: Database,
    clock: FakeClock,
    *,
    core_options: dict[str, Any] | None = None,
    **sim_options: Any,
) -> AsyncIterator[tuple[Any, Core]]:
    """A started simulator and the real job core wired to that provider's adapter
    (``core_options``: ``tests.core.build_core``'s, e.g. a ``resilience`` of the test's)."""
    entry = PROVIDERS[name]
    async with entry.simulator(clock=clock, **sim_options) as sim:
        async with aiohttp.ClientSession() as session:
            adapter = entry.adapter(session, api_key=sim.api_key, base_url=entry.base_url(sim))
            yield sim, build_core(db, clock, session, {name: adapter}, **(core_options or {}))
        assert sim.violations == []
        assert sim.download_auth_headers_seen == []
        assert sim.urls_with_key() == []


async def ledger_kinds(db: Database, job_id: int) -> list[str]:
    return [e.kind.value for e in await LedgerRepository(db).for_job(job_id)]


# ------------------------------------------------------------------ adapter tests
#
# What every ``tests/test_provider_<name>.py`` needs: the simulator, an HTTP session and
# the adapter as fixtures, a job to send, and one checker for the table of faults each
# module keeps (``(endpoint, fault, Raises(...) | Fails(...))``), so a reader sees in
# that module which provider reads which fault as what.

FAST = aiohttp.ClientTimeout(total=0.5)
PNG = media.make_image("PNG", 640, 480)
JPEG = media.make_image("JPEG", 640, 480)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


PNG_URL = data_url("image/png", PNG)
JPEG_URL = data_url("image/jpeg", JPEG)


def prepared_input(
    mode: Mode,
    prompt: str,
    *,
    duration: int = 6,
    resolution: str = "768P",
    callback_url: str | None = None,
    last_image: str = JPEG_URL,
    **options: Any,
) -> PreparedInput:
    """A job as the core hands it over: a PNG first frame and ``last_image`` as needed."""
    spec = JobSpec(mode=mode, prompt=prompt, duration=duration, resolution=resolution, **options)
    first = PNG_URL if mode is not Mode.TEXT else None
    last = last_image if mode is Mode.FIRST_LAST else None
    return PreparedInput(spec, first, last, callback_url)


def job_maker(default_prompt: str, **defaults: Any) -> Callable[..., PreparedInput]:
    """``prepared(mode=TEXT, prompt=default_prompt, **options)``: one provider's test job."""

    def prepared(
        mode: Mode = Mode.TEXT, prompt: str = default_prompt, **options: Any
    ) -> PreparedInput:
        return prepared_input(mode, prompt, **{**defaults, **options})

    return prepared


def adapter_fixtures(name: str) -> tuple[Any, Any, Any]:
    """The ``sim``, ``session`` and ``provider`` fixtures of one provider's adapter tests.

    A module binds them under those names: ``sim, session, provider = adapter_fixtures(...)``.
    The adapter talks to the simulator with the simulator's key and a short timeout.
    """
    entry = PROVIDERS[name]

    @pytest.fixture
    async def sim(clock: FakeClock) -> AsyncIterator[Any]:
        async with entry.simulator(clock=clock) as simulator:
            yield simulator
        assert simulator.urls_with_key() == []  # the key goes in a header, never a URL

    @pytest.fixture
    async def session() -> AsyncIterator[aiohttp.ClientSession]:
        async with aiohttp.ClientSession() as http:
            yield http

    @pytest.fixture
    def provider(sim: Any, session: aiohttp.ClientSession) -> Any:
        return entry.adapter(
            session, api_key=sim.api_key, base_url=entry.base_url(sim), timeout=FAST
        )

    return sim, session, provider


def core_fixtures(name: str) -> tuple[Any, Any, Any]:
    """The ``world``, ``sim`` and ``core`` fixtures of one provider's job-core tests.

    A module binds them: ``world, sim, core = core_fixtures("odkkk")``.
    """

    @pytest.fixture
    async def world(db: Database, clock: FakeClock) -> AsyncIterator[tuple[Any, Core]]:
        async with provider_core(name, db, clock) as pair:
            yield pair

    @pytest.fixture
    def sim(world: tuple[Any, Core]) -> Any:
        return world[0]

    @pytest.fixture
    def core(world: tuple[Any, Core]) -> Core:
        return world[1]

    return world, sim, core


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as resp:
        return resp.status, await resp.read()


async def run_to_success(provider: Any, job: PreparedInput) -> tuple[str, dict[str, Any]]:
    """Submit and poll until SUCCEEDED; the locator and the receipt's meta."""
    receipt = await provider.submit(job)
    for _ in range(5):
        state = await provider.query(receipt.task_id, receipt.meta)
        if state.phase is Phase.SUCCEEDED:
            assert state.locator is not None
            return state.locator, receipt.meta
    raise AssertionError("never succeeded")


async def raised(call: Awaitable[object]) -> ProviderError:
    """The ProviderError ``call`` raises (the test fails if it raises none)."""
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


async def wrong_key_refusal(
    name: str, sim: Any, session: aiohttp.ClientSession, job: PreparedInput
) -> ProviderError:
    """Submit with a key the simulator does not know: AUTH, and no task is created."""
    entry = PROVIDERS[name]
    wrong = entry.adapter(session, api_key="sk-wrong", base_url=entry.base_url(sim), timeout=FAST)
    error = await raised(wrong.submit(job))
    assert error.kind is ProviderErrorKind.AUTH
    assert sim.tasks == {}
    return error


class _Unchecked:
    def __repr__(self) -> str:
        return "unchecked"


UNCHECKED: Any = _Unchecked()


@dataclass(frozen=True)
class Outcome:
    """What a fault must read as: this kind, and this provider code / Retry-After if given."""

    kind: ProviderErrorKind
    code: str | None = UNCHECKED
    retry_after: float | None = UNCHECKED

    def check(self, error: ProviderError) -> None:
        assert error.kind is self.kind, error
        if self.code is not UNCHECKED:
            assert error.provider_code == self.code, error
        if self.retry_after is not UNCHECKED:
            assert error.retry_after == self.retry_after, error


class Raises(Outcome):
    """The call raises a ProviderError of this kind."""


class Fails(Outcome):
    """The query answers with a FAILED task whose ``failure`` is of this kind."""


FaultCase = tuple[str, "str | Fault", Outcome]


def fault_cases(table: list[FaultCase]) -> pytest.MarkDecorator:
    """Parametrize a test over a provider's fault table, one case an ``endpoint-fault``."""
    ids = [f"{endpoint}-{getattr(fault, 'name', fault)}" for endpoint, fault, _ in table]
    return pytest.mark.parametrize(("endpoint", "fault", "expected"), table, ids=ids)


async def check_fault(
    provider: Any,
    sim: Any,
    job: PreparedInput,
    endpoint: str,
    fault: str | Fault,
    expected: Outcome,
) -> None:
    """Inject ``fault`` on ``endpoint`` and check the adapter reads it as ``expected``.

    A submit fault must raise, with one request only (the adapter never resends) and no key
    in the error's detail. A query fault either raises and the task goes on (the next query
    answers normally), or (``Fails``) is a FAILED task with that failure.
    """
    if endpoint == "submit":
        sim.inject("submit", fault)
        error = await raised(provider.submit(job))
        expected.check(error)
        assert len(sim.requests_to("submit")) == 1  # never resent by the adapter
        assert sim.api_key not in error.detail
        return
    receipt = await provider.submit(job)
    sim.inject(endpoint, fault)
    if isinstance(expected, Fails):
        state = await provider.query(receipt.task_id, receipt.meta)
        assert state.phase is Phase.FAILED
        assert state.failure is not None
        expected.check(state.failure)
    else:
        expected.check(await raised(provider.query(receipt.task_id, receipt.meta)))
        assert (await provider.query(receipt.task_id, receipt.meta)).phase is Phase.QUEUED
