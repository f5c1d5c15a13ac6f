"""Two real bot processes, shards 0 and 1 of 2, on one PostgreSQL database (issue 14).

Each process runs ``bot.py`` with ``HAILUO_SHARD_COUNT=2`` and its own
``HAILUO_SHARD_IDS``, against the shard-aware Discord simulator (one guild on each
shard) and the MiniMax simulator. A guild's commands reach only its shard's process;
jobs are worked by whichever process holds their lease, and status edits and videos go
over REST from either.

- One process is killed with SIGKILL while it is in the middle of a step (a status
  query the simulator holds unanswered, so its tick and its leases are held): every job
  is submitted once and posted once, the ledger settles each reservation once (a charge,
  or a refund for the job the provider failed), and the survivor takes the dead one's
  job over once its lease lapses (``HAILUO_LEASE_SECONDS``).
- With both alive and ``MINIMAX_SUBMITS_PER_MINUTE`` fixed, the provider never sees more
  than that many submissions in any 60 s window, whichever process sent them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from tests.discord_sim import DiscordSimulator, SimGuild, guild_id_on_shard
from tests.e2e import Channel, bot_env, minimax_env
from tests.sims.minimax import MiniMaxSimulator
from tests.test_restart import BotProcess

LEASE = 3.0  # HAILUO_LEASE_SECONDS
#: Between the lease's lapse and the survivor's query: its next tick (0.05 s here) and
#: the scheduling of two bot processes and PostgreSQL on a loaded two-core machine.
TICK_MARGIN = 3.0
CEILING = 2  # MINIMAX_SUBMITS_PER_MINUTE
WINDOW = 60.0
#: A submission's slot is taken in the bot just before the request leaves; the simulator
#: stamps it when it arrives. Two arrivals a window apart may show up to this much closer.
TRANSIT = 1.0


class StampedMiniMax(MiniMaxSimulator):
    """MiniMax's simulator that stamps each submit and query with the wall time (the
    bots' own clock), and can leave one query of a task unanswered (``hold_next_query``).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.submitted_at: list[float] = []
        #: (wall time, task id) of every query received.
        self.queried: list[tuple[float, str]] = []
        self._hold: set[str] = set()
        self.held: asyncio.Event = asyncio.Event()

    def hold_next_query(self, task_id: str) -> None:
        """The next query of ``task_id`` gets no answer (until the simulator closes)."""
        self._hold.add(task_id)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        self.submitted_at.append(time.time())
        return await super()._submit(request)

    async def _query(self, request: web.Request) -> web.StreamResponse:
        task_id = request.query.get("task_id", "")
        self.queried.append((time.time(), task_id))
        if task_id in self._hold:
            self._hold.discard(task_id)
            self.held.set()
            await asyncio.Event().wait()  # cancelled when the client goes or we close
        return await super()._query(request)


@dataclass
class World:
    discord: DiscordSimulator
    mm: StampedMiniMax
    url: str
    bots: dict[int, BotProcess] = field(default_factory=dict)  # by shard

    def room(self, shard: int) -> Channel:
        return Channel(self.discord, self.discord.guilds[shard].channels[0].id)

    async def rows(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def jobs(self) -> list[asyncpg.Record]:
        return await self.rows(
            "SELECT id, guild_id, user_id, status, provider_task_id, delivered_message_id,"
            " lease_holder, lease_expires, cost FROM jobs ORDER BY id"
        )


@pytest.fixture
async def world(
    pg_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[World]:
    now = time.time()
    guilds = [SimGuild(name=f"shard {n}", id=guild_id_on_shard(n, 2, now)) for n in (0, 1)]
    # A held query must outlast the kill: the provider timeout is long here.
    extra: dict[str, str] = {"HAILUO_PROVIDER_TIMEOUT": "20", **getattr(request, "param", {})}
    async with (
        DiscordSimulator(guilds=guilds, shard_count=2) as discord_sim,
        StampedMiniMax(polls_until_done=None) as mm,
    ):
        world = World(discord_sim, mm, pg_url)
        for shard in (0, 1):
            env = bot_env(
                discord_sim,
                pg_url,  # type: ignore[arg-type]  # a URL where the helper takes a path
                HAILUO_LEASE_SECONDS=str(LEASE),
                HAILUO_SHARD_COUNT="2",
                HAILUO_SHARD_IDS=str(shard),
                HAILUO_PROCESS_ID=f"shard{shard}",
                **minimax_env(mm),
                **extra,
            )
            workdir = tmp_path / f"shard{shard}"
            workdir.mkdir()
            world.bots[shard] = BotProcess(env, workdir)
        try:
            for bot in world.bots.values():
                await bot.start()
            await discord_sim.wait_for(lambda: discord_sim.shard_sessions() == {0: 1, 1: 1}, 60)
            for guild in guilds:  # each shard's command tree answers
                inter = await discord_sim.send_slash(["hailuo", "quota"], guild_id=guild.id)
                await inter.wait_response(timeout=30)
            yield world
        finally:
            for bot in world.bots.values():
                await bot.stop()
        assert mm.violations == []


async def submit_jobs(world: World, per_guild: int) -> None:
    """``per_guild`` text jobs in each shard's guild, one member each (the cap is per member)."""
    for shard, guild in enumerate(world.discord.guilds):
        for n in range(per_guild):
            inter = await world.discord.send_slash(
                ["hailuo", "text"],
                {"prompt": f"shard {shard} job {n}"},
                guild_id=guild.id,
                user_id=7_000_000 + 100 * shard + n,
            )
            await inter.wait_response(timeout=30)
            assert inter.response_type == 4 and not inter.ephemeral, inter.response_data


async def until(condition: Any, timeout: float) -> Any:
    """Poll another process's state (no event to await across processes)."""
    async with asyncio.timeout(timeout):
        while not (found := await condition()):
            await asyncio.sleep(0.05)
        return found


async def all_ended(world: World, count: int) -> bool:
    rows = await world.jobs()
    return len(rows) == count and all(
        r["status"] in ("delivered", "failed") and r["lease_holder"] is None for r in rows
    )


async def check_once_and_ledger(world: World, count: int, failed: set[str]) -> None:
    """Every job submitted once, posted once (if delivered), settled once in the ledger."""
    rows = await world.jobs()
    assert len(world.mm.submits) == count
    assert sorted(r["provider_task_id"] for r in rows) == sorted(world.mm.tasks)
    videos = [m for shard in (0, 1) for m in world.room(shard).videos()]
    delivered = [r for r in rows if r["status"] == "delivered"]
    assert len(videos) == len(delivered) == count - len(failed)
    assert sorted(m.id for m in videos) == sorted(r["delivered_message_id"] for r in delivered)
    assert {r["provider_task_id"] for r in rows if r["status"] == "failed"} == failed
    ledger = await world.rows("SELECT job_id, kind, delta, user_id FROM ledger ORDER BY id")
    for job in rows:
        entries = [(e["kind"], e["delta"]) for e in ledger if e["job_id"] == job["id"]]
        settle = "charge" if job["status"] == "delivered" else "refund"
        assert [k for k, _ in entries] == ["reserve", settle], (job["id"], entries)
        # The member's credit: the job's cost if it was delivered, nothing if it failed.
        spent = -sum(e["delta"] for e in ledger if e["user_id"] == job["user_id"])
        assert spent == (job["cost"] if settle == "charge" else 0), (job["id"], entries)


@pytest.mark.timeout(180)
async def test_multi_process_sigkill_survivor_takes_over_within_the_lease(world: World) -> None:
    mm = world.mm
    await submit_jobs(world, per_guild=2)
    await until(lambda: _true(len(mm.tasks) == 4), 60)
    # Hold one task's next status query: the process that sends it is stuck in that step
    # (its tick waits for it), holding the job's lease and renewing it.
    held = next(iter(mm.tasks))
    mm.hold_next_query(held)
    await asyncio.wait_for(mm.held.wait(), 60)
    [job] = await until(
        lambda: _rows_where(world, held, lambda r: r["lease_holder"] is not None), 30
    )
    holder = job["lease_holder"]
    dead = int(holder.removeprefix("shard"))
    # What the dead one holds when it dies: the held job, and the other steps of its tick.
    taken = {r["provider_task_id"] for r in await world.jobs() if r["lease_holder"] == holder}
    assert held in taken
    await world.bots[dead].kill()
    killed_at = time.time()
    [job] = await _rows_where(world, held, lambda r: True)
    expires = job["lease_expires"]  # the dead one's last renewal: it renews no more
    assert job["lease_holder"] == holder and expires <= killed_at + LEASE

    # The survivor queries the held task again once the dead one's lease lapsed.
    first = await until(
        lambda: _true(next((t for t, tid in mm.queried if tid == held and t > killed_at), None)),
        60,
    )
    assert first - killed_at <= LEASE + TICK_MARGIN, (first - killed_at, taken)
    assert first > expires  # not before the lease lapsed: never two at once on one step
    # The rest: three tasks succeed and one fails; the survivor ends them all.
    tasks = list(mm.tasks)
    failed = tasks[-1]
    for task_id in tasks[:-1]:
        mm.complete(task_id)
    mm.fail(failed)
    await until(lambda: all_ended(world, 4), 90)
    await check_once_and_ledger(world, 4, {failed})
    by_shard = submitted_by(world)  # each job submitted by one process, once
    assert sorted(j for ids in by_shard.values() for j in ids) == [1, 2, 3, 4], by_shard
    # The survivor ended them all: the dead one's leases lapsed and were taken over.
    assert world.bots[1 - dead].proc is not None and world.bots[1 - dead].proc.returncode is None


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "world", [{"MINIMAX_SUBMITS_PER_MINUTE": str(CEILING)}], indirect=True, ids=["ceiling"]
)
async def test_multi_process_both_alive_never_exceed_the_submission_ceiling(
    world: World,
) -> None:
    mm = world.mm
    jobs = 2 * CEILING  # twice what a window allows: the second half waits a minute
    await submit_jobs(world, per_guild=CEILING)
    # Each task succeeds as soon as it exists; the last two need the next window.
    done: set[str] = set()

    async def finished() -> bool:
        for task_id in set(mm.tasks) - done:
            mm.complete(task_id)
            done.add(task_id)
        return await all_ended(world, jobs)

    await until(finished, 150)
    await check_once_and_ledger(world, jobs, set())
    stamps = sorted(mm.submitted_at)
    busiest = max(sum(1 for t in stamps if s <= t < s + WINDOW - TRANSIT) for s in stamps)
    # Each process alone would send CEILING at once (its own guild's jobs are CEILING):
    # together they still send CEILING a window.
    assert busiest == CEILING, stamps
    assert stamps[CEILING] - stamps[0] >= WINDOW - TRANSIT, stamps
    # Which process sent which job is the claim's race (either takes any queued job), and
    # on a loaded machine one may send them all. The ceiling held across the two either
    # way: with a limit of its own, the process that had sent nothing yet would have sent a
    # waiting job inside the first window, and ``busiest`` would exceed the ceiling.
    by_shard = submitted_by(world)
    assert sorted(j for ids in by_shard.values() for j in ids) == list(range(1, jobs + 1))
    assert sorted(by_shard) == [0, 1], by_shard


def submitted_by(world: World) -> dict[int, list[int]]:
    """The jobs each process submitted, from its own log (``submitted job=N``)."""
    found: dict[int, list[int]] = {}
    for shard, bot in world.bots.items():
        text = "".join(p.read_text(errors="replace") for p in bot.workdir.glob("bot-*.log"))
        found[shard] = [int(n) for n in re.findall(r"submitted job=(\d+) ", text)]
    return found


async def _true(value: Any) -> Any:
    return value


async def _rows_where(world: World, task_id: str, keep: Any) -> list[asyncpg.Record]:
    return [r for r in await world.jobs() if r["provider_task_id"] == task_id and keep(r)]
