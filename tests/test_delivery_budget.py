"""The delivery's rules as tables, and its local faults through the real core.

``upload_limit`` (which limit decides), ``PacedByAge`` (how retries are spaced on a budget
of time) and the providers' file lifetimes are pure; a full disk is a real ``OSError``
from the real Downloader against the MiniMax simulator.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hailuo.jobs.retry import PacedByAge
from hailuo.media.downloads import plan_delivery, upload_limit
from hailuo.model.status import JobStatus
from providers.registry import TABLE
from tests.core import Core
from tests.provider_matrix import core_fixtures, ledger_kinds

MIB = 1024 * 1024
DEFAULT = 10 * MIB

world, sim, core = core_fixtures("minimax")


@pytest.mark.parametrize(
    ("interaction", "guild", "expected"),
    [
        (None, None, DEFAULT),  # nothing known: the default, and only then
        (None, 50 * MIB, 50 * MIB),  # a boosted server with no interaction on record
        (25 * MIB, 10 * MIB, 25 * MIB),  # Discord's own figure beats discord.py's stale 10 MiB
        (50 * MIB, 50 * MIB, 50 * MIB),  # tier 2
        (100 * MIB, 100 * MIB, 100 * MIB),  # tier 3
        (500 * MIB, 50 * MIB, 50 * MIB),  # the member's Nitro does not lift the bot's limit
        (20 * MIB, None, 20 * MIB),  # no fixed 10 MiB joins in
    ],
)
def test_upload_limit_which_limit_decides(
    interaction: int | None, guild: int | None, expected: int
) -> None:
    assert upload_limit(interaction, guild, DEFAULT) == expected


def test_upload_limit_plan_attaches_only_what_fits() -> None:
    assert plan_delivery(12_000_000, 25 * MIB).attach
    assert not plan_delivery(40_000_000, 25 * MIB).attach
    assert plan_delivery(40_000_000, 25 * MIB).reason == "delivery.too_large"
    assert not plan_delivery(1, 0).attach  # the upload was refused for its size


@pytest.mark.parametrize(
    ("age", "low", "high"),
    [
        (0.0, 3.75, 6.25),  # the shortest wait, with jitter
        (60.0, 11.25, 18.75),  # a quarter of the time already spent
        (600.0, 112.5, 187.5),
        (3600.0, 225.0, 375.0),  # capped at five minutes
        (9 * 3600.0, 225.0, 375.0),
    ],
)
def test_delivery_budget_pacing_grows_with_age_and_is_capped(
    age: float, low: float, high: float
) -> None:
    rng = random.Random(3)
    for _ in range(50):
        assert low <= PacedByAge().delay(age, rng) <= high


def test_delivery_budget_pacing_honours_retry_after() -> None:
    assert PacedByAge().delay(0.0, random.Random(1), retry_after=120.0) >= 120.0


def test_delivery_budget_lifetimes_are_the_documented_ones() -> None:
    hours = {name: cap.result_lifetime / 3600 for name, cap in TABLE.items()}
    assert hours == {
        "minimax": 9,
        "freepik": 1,
        "novita": 1,
        "odkkk": 24,
        "gptge": 9,
        "demo": 24,
    }
    assert [name for name, cap in TABLE.items() if not cap.fresh_url] == ["odkkk"]


async def test_delivery_budget_a_full_disk_waits_and_is_never_refunded(
    core: Core, sim, db, tmp_path: Path
) -> None:
    """Writes fail (here: the download directory is missing, a real OSError) for half an
    hour of tries; once there is room the job is delivered, charged once."""
    room = tmp_path / "downloads"
    core.worker.deliverer.downloader.directory = room
    job = await core.new_job()
    job = await core.run_until(job.id, JobStatus.SUCCEEDED)
    for _ in range(60):
        await core.worker.tick()
        core.clock.advance(30)
    job = await core.jobs.get(job.id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert core.notifier.posted == []
    assert await ledger_kinds(db, job.id) == ["reserve"]  # waiting, never refunded
    room.mkdir()
    job = await core.run_until(job.id, JobStatus.DELIVERED, JobStatus.DELIVERY_FAILED, steps=200)
    assert job.status is JobStatus.DELIVERED
    assert [p.kind for p in core.notifier.posted] == ["attachment"]
    assert await ledger_kinds(db, job.id) == ["reserve", "charge"]
    assert list(room.iterdir()) == []  # the temporary file went once posted
