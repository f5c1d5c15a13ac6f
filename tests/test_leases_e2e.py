"""Two real bot processes on one SQLite file; one is killed with SIGKILL mid-run (lease).

The survivor takes the dead one's jobs over once their leases lapse
(``HAILUO_LEASE_SECONDS``, short here): every job is submitted once and its video
posted once, and the ledger charges each job once."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.discord_sim import DiscordSimulator
from tests.e2e import bot_env, channel, minimax_env
from tests.sims.minimax import MiniMaxSimulator
from tests.test_restart import BotProcess, ledger_kinds, ready, wait_until

pytestmark = pytest.mark.timeout(120)
JOBS = 4


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[DiscordSimulator, MiniMaxSimulator, BotProcess, BotProcess]]:
    async with DiscordSimulator() as discord_sim, MiniMaxSimulator(polls_until_done=None) as mm:
        env = bot_env(
            discord_sim, tmp_path / "bot.sqlite3", HAILUO_LEASE_SECONDS="2", **minimax_env(mm)
        )
        bots = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            bots.append(BotProcess(env, tmp_path / name))
        try:
            yield discord_sim, mm, bots[0], bots[1]
        finally:
            for bot in bots:
                await bot.stop()
        assert mm.violations == []


def jobs(database: Path) -> list[tuple[str, int | None, str | None]]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return conn.execute(
            "SELECT status, delivered_message_id, lease_holder FROM jobs ORDER BY id"
        ).fetchall()


async def test_a_killed_process_jobs_are_delivered_once_by_the_other_lease(
    world, tmp_path: Path
) -> None:
    discord_sim, mm, a, b = world
    database = tmp_path / "bot.sqlite3"
    room = channel(discord_sim)
    await a.start()
    await ready(discord_sim, 1)
    for user in range(JOBS):  # one member each: the per-member cap is 2
        inter = await discord_sim.send_slash(
            ["hailuo", "text"], {"prompt": f"job {user}"}, user_id=5_000_000 + user
        )
        await inter.wait_response()
    await wait_until(lambda: len(mm.tasks) == JOBS)
    # A second process joins the same database (its gateway session idles: no shards here).
    await b.start()
    await discord_sim.wait_for(lambda: discord_sim.identifies >= 2, timeout=30)
    # Both follow the tasks; half of them finish while both run.
    tasks = list(mm.tasks)
    for task_id in tasks[: JOBS // 2]:
        mm.complete(task_id)
    await discord_sim.wait_for(lambda: len(room.videos()) >= 1, timeout=30)

    await a.kill()  # SIGKILL: no lease released, no step finished
    for task_id in tasks[JOBS // 2 :]:
        mm.complete(task_id)
    await wait_until(lambda: [row[0] for row in jobs(database)] == ["delivered"] * JOBS, 60)

    assert len(mm.submits) == JOBS  # each job submitted once
    videos = room.videos()
    assert len(videos) == JOBS  # each job posted once
    assert sorted(m.id for m in videos) == sorted(row[1] for row in jobs(database))
    assert sorted(ledger_kinds(database)) == ["charge"] * JOBS + ["reserve"] * JOBS
    assert [row[2] for row in jobs(database)] == [None] * JOBS  # every lease released
