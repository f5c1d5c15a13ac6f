"""The animate intake's bounds: its own image threads, and requests counted against the caps."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import aiohttp
import pytest

from hailuo.media.intake import ImageIntake
from hailuo.media.preparing import ImageWorkers
from hailuo.model.errors import QuotaExceeded
from hailuo.money.quotas import QuotaPolicy
from providers.registry import TABLE
from tests import media

pytestmark = pytest.mark.timeout(30)


async def test_bounded_read_image_work_does_not_wait_behind_the_default_executor() -> None:
    """DNS look-ups use the default executor: a decode must not queue there (nor block it)."""
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    workers = ImageWorkers()
    try:
        checked = await workers.inspect(media.make_image("PNG", 640, 480))
        prepared = await workers.prepare(
            checked, accepted_formats=frozenset({"PNG", "JPEG"}), max_bytes=10_000_000
        )
    finally:
        release.set()
        await asyncio.gather(*blockers)
        workers.close()
    assert (checked.width, checked.height) == (640, 480)
    assert prepared.mime in ("image/png", "image/jpeg")


async def test_bounded_read_checks_in_progress_count_against_the_caps() -> None:
    in_db = {"member": 2, "guild": 2}

    async def in_flight(guild_id: int, user_id: int) -> tuple[int, int]:
        return in_db["member"], in_db["guild"]

    async def policy(guild_id: int) -> QuotaPolicy:
        return QuotaPolicy(max_jobs_per_member=3, max_jobs_per_guild=4)

    async with aiohttp.ClientSession() as session:
        intake = ImageIntake(
            session,
            in_flight=in_flight,
            policy=policy,
            workers=ImageWorkers(),
            capabilities=TABLE,
        )
        try:
            async with intake.checking(1, 42):
                assert intake.checking_now(1, 42) == 1
                with pytest.raises(QuotaExceeded) as member_cap:
                    async with intake.checking(1, 42):
                        pytest.fail("a second check past the member's cap")
                assert member_cap.value.rule == "quota.member_in_flight"
                async with intake.checking(1, 7):  # another member: the server's last slot
                    with pytest.raises(QuotaExceeded) as guild_cap:
                        async with intake.checking(1, 8):
                            pytest.fail("a check past the server's cap")
                    assert guild_cap.value.rule == "quota.guild_in_flight"
            assert intake.checking_now(1, 42) == 0

            # a burst: exactly the free slots are taken, whatever the interleaving
            async def one() -> bool:
                with contextlib.suppress(QuotaExceeded):
                    async with intake.checking(1, 42):
                        await asyncio.sleep(0)
                        return True
                return False

            results = await asyncio.gather(*(one() for _ in range(5)))
            assert results.count(True) == 1
        finally:
            intake.workers.close()
