"""10,000 open jobs in one bot process: memory, event-loop lag, recovery, status calls; JSON.

A real SQLite file is seeded with ``--jobs`` open jobs (submitted or running at
MiniMax, each with its status card) as a restart would find them; the real bot
(bot.py's object graph, the real discord.py client, the real worker) is started on
it in a child process, against the loopback Discord and MiniMax simulators in a
third process whose tasks keep running. Measured:

- ``rss_mb``: the bot process's peak RSS while it follows the jobs; ``rss_mb_idle``
  the same process started on an empty database;
- ``loop_lag_p99_ms``: time-weighted: a probe sleeps 10 ms at a time and each
  lateness ``d`` means the loop was late for ``d`` seconds, by 0 up to ``d``; the
  figure is the lateness exceeded during 1 % of wall time (a per-sample percentile
  would hide a one-second stall behind a hundred prompt samples);
  ``loop_lag_max_ms`` the longest; ``loop_stalled_pct`` the share of wall time
  inside stalls longer than 100 ms;
- ``recovery_s``: from the start of the bot until the simulator has seen a status
  query for every open job (each one looked at once), with MiniMax's status budget
  raised to ``--budget`` (``status_budget_per_s``) so the bot's own cost is measured;
  ``recovery_cpu_s`` the bot's CPU seconds until then, and ``bare_recovery_s`` the
  adapter alone asking every task once (the floor, in the same run);
- ``queries_over_1s_late``: of the ``scheduled_queries`` after recovery, those that
  started more than 1 s after their due time;
- ``status_calls_per_s``: the queries a second after recovery, over ``--window`` s.

    .venv/bin/python -m bench.scale [--jobs 10000] [--window 20] [--quick]

On PostgreSQL (``bench._pg``): ``--postgresql`` (a throwaway durable server) or
``--database postgresql://…`` / ``HAILUO_BENCH_DATABASE``; the idle bot and the
seeded one each get a fresh database through ``HAILUO_DATABASE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import asyncpg

from bench._common import ROOT, SimHost, quick, rss_mb
from bench._pg import PgBench, add_arguments, chosen
from hailuo.jobs.cards import seen_digest
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus

# The project's imports, in one place (module paths may move).
from hailuo.money.quotas import current_period
from providers.minimax import MiniMaxProvider
from storage.db import Database
from storage.postgres import PostgresDatabase

PROBE = 0.01
RECOVERY_CAP = 90.0
#: The status budget of the run: what this machine's bot and simulator can serve, far
#: above the default (``hailuo.jobs.budget``), so the bot's own cost is what is measured.
BUDGET = 5000.0


def weighted_lag(lates: list[float], wall: float, share: float = 0.01) -> float:
    """The lateness the loop exceeds during ``share`` of ``wall`` seconds.

    A probe ``d`` seconds late means the loop was blocked for ``d`` seconds, late by
    0 rising to ``d``: it spends ``max(0, d - L)`` seconds later than ``L``.
    """
    budget = share * wall
    if sum(lates) <= budget:
        return 0.0
    low, high = 0.0, max(lates)
    for _ in range(60):
        mid = (low + high) / 2
        if sum(max(0.0, d - mid) for d in lates) > budget:
            low = mid
        else:
            high = mid
    return high


SEED_COLUMNS = (
    "guild_id", "channel_id", "user_id", "status_message_id", "status", "spec", "cost",
    "period", "provider", "provider_task_id", "polls", "next_poll_at", "created_at",
    "updated_at", "submitted_at", "card_seen",
)  # fmt: skip


async def seed(path: Path | str, sims: SimHost, count: int) -> None:
    """``count`` open MiniMax jobs, due now, each with its card in the simulator (and, as
    the previous process left it, the digest of what that card shows). ``path``: a
    SQLite file, or a PostgreSQL URL (``bench._pg``)."""
    on_pg = isinstance(path, str)
    db = await (PostgresDatabase.open(path) if on_pg else Database.open(path))  # type: ignore[arg-type]
    await db.close()
    pairs = await sims.ask(op="seed", count=count)
    now = time.time()
    spec = JobSpec(mode=Mode.TEXT, prompt="a benchmark").to_json()
    period = current_period(now).key
    guild, channel = sims.hello["guild_id"], sims.hello["channel_id"]
    rows = [
        (
            guild,
            channel,
            10_000 + n % 500,
            message_id,
            "running" if n % 2 else "submitted",
            spec,
            1,
            period,
            "minimax",
            task_id,
            1,
            now,
            now - 30,
            now - 30,
            now - 30,
            seen_digest(
                (JobStatus.RUNNING if n % 2 else JobStatus.SUBMITTED, None, None, None, None)
            ),
        )
        for n, (task_id, message_id) in enumerate(pairs)
    ]
    if on_pg:
        conn = await asyncpg.connect(str(path))
        try:
            await conn.copy_records_to_table("jobs", records=rows, columns=SEED_COLUMNS)
            await conn.execute("ANALYZE jobs")
        finally:
            await conn.close()
        return
    async with aiosqlite.connect(str(path), isolation_level=None) as conn:
        await conn.execute("BEGIN")
        await conn.executemany(
            "INSERT INTO jobs (guild_id, channel_id, user_id, status_message_id, status, spec,"
            " cost, period, provider, provider_task_id, polls, next_poll_at, created_at,"
            " updated_at, submitted_at, card_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        await conn.execute("COMMIT")


# -- the bot's side (a child process) -------------------------------------------------------


async def child(env: dict[str, str]) -> dict[str, Any]:
    """Run the bot until told to stop on stdin; measure lag and RSS from the inside."""
    from tests.e2e import running_bot  # the project's import, in one place

    loop = asyncio.get_running_loop()
    lates: list[float] = []
    rss: list[float] = []
    stop = asyncio.Event()

    busy: list[float] = []

    async def probe() -> None:
        while not stop.is_set():
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(PROBE)
            lates.append(max(0.0, loop.time() - before - PROBE))
            # the event loop thread's own CPU between two wake-ups: the part of a stall
            # the bot's code caused (the rest is this shared machine's other processes)
            busy.append(time.thread_time() - cpu)

    async def memory() -> None:
        while not stop.is_set():
            rss.append(rss_mb())
            await asyncio.sleep(0.5)

    print(json.dumps({"started_at": time.time()}), flush=True)
    probing = asyncio.create_task(probe())
    watching = asyncio.create_task(memory())
    started = loop.time()
    marked: dict[float, int] = {}
    async with running_bot(env) as app:
        print(json.dumps({"ready_at": time.time()}), flush=True)
        metrics = app.bot.worker.metrics
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "mark":
            marked = metrics.lateness_counts()  # recovery is over: steady state from here
            print(json.dumps({"marked": True}), flush=True)
        late = metrics.lateness_counts()
        wall = loop.time() - started
        stop.set()
        await asyncio.gather(probing, watching)
        rss.append(rss_mb())
    return {
        "rss_mb": round(max(rss), 1),
        "loop_lag_p99_ms": round(weighted_lag(lates, wall) * 1000, 1),
        "loop_lag_max_ms": round(max(lates, default=0.0) * 1000, 1),
        "loop_stalled_pct": round(100 * sum(d for d in lates if d > 0.1) / wall, 2),
        "loop_lag_sample_p99_ms": round(sorted(lates)[int(len(lates) * 0.99)] * 1000, 1),
        "loop_busy_max_ms": round(max(busy, default=0.0) * 1000, 1),
        "loop_busy_p99_ms": round(weighted_lag(busy, wall) * 1000, 1),
        "scheduled_queries": late.get(math.inf, 0) - marked.get(math.inf, 0),
        "queries_over_1s_late": (late.get(math.inf, 0) - late.get(1.0, 0))
        - (marked.get(math.inf, 0) - marked.get(1.0, 0)),
    }


# -- the orchestrator -----------------------------------------------------------------------


class Bot:
    """The bot in a child process (``python -m bench.scale --child``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.scale",
            "--child",
            json.dumps(self.env),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return float((await self.line())["started_at"])

    async def line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError("the bot process stopped")
        return dict(json.loads(raw))

    def cpu_s(self) -> float:
        """The bot process's CPU time so far (user + system, every thread)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def mark(self) -> None:
        """Tell the bot recovery is over (its lateness counts start from here)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"mark\n")
        await self.proc.stdin.drain()
        await self.line()

    async def stop(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        figures = await self.line()
        await self.proc.wait()
        return figures


async def bare_recovery(count: int) -> float:
    """Seconds for the MiniMax adapter alone to ask ``count`` seeded tasks once each."""
    async with SimHost() as sims, aiohttp.ClientSession() as session:
        pairs = await sims.ask(op="seed", count=count)
        adapter = MiniMaxProvider(
            session, api_key=sims.hello["MINIMAX_API_KEY"], base_url=sims.hello["MINIMAX_BASE_URL"]
        )
        slots = asyncio.Semaphore(64)

        async def ask(task_id: str) -> None:
            async with slots:
                await adapter.query(task_id, {})

        started = time.time()
        await asyncio.gather(*(ask(task_id) for task_id, _ in pairs))
        return round(time.time() - started, 2)


async def main(
    jobs: int, window: float, idle_for: float, budget: float, target: str | None = None
) -> dict[str, Any]:
    if target is None:
        return await measure(jobs, window, idle_for, budget)
    async with PgBench(target) as pg:
        figures = await measure(jobs, window, idle_for, budget, pg)
        figures["scale"].update(pg.describe())
    return figures


async def measure(
    jobs: int, window: float, idle_for: float, budget: float, pg: PgBench | None = None
) -> dict[str, Any]:
    load = round(os.getloadavg()[0], 1)
    bare = await bare_recovery(jobs)
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        async with SimHost() as sims:
            idle_db = await pg.fresh() if pg else Path(tmp) / "idle.sqlite3"
            idle = Bot(sims.env(idle_db))  # type: ignore[arg-type]
            await idle.start()
            await idle.line()  # ready
            await asyncio.sleep(idle_for)
            idle_figures = await idle.stop()

            path = await pg.fresh() if pg else Path(tmp) / "open.sqlite3"
            await seed(path, sims, jobs)
            bot = Bot(sims.env(path, MINIMAX_STATUS_PER_SECOND=str(budget)))  # type: ignore[arg-type]
            started_at = await bot.start()
            ready_at = float((await bot.line())["ready_at"])
            deadline = time.monotonic() + RECOVERY_CAP
            seen: dict[str, Any] = await sims.ask(op="queries")
            cpu = bot.cpu_s()
            while seen["all_seen_at"] is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                cpu = bot.cpu_s()
                seen = await sims.ask(op="queries")
            await bot.mark()
            first, t1 = seen["total"], time.time()
            await asyncio.sleep(window)
            last, t2 = (await sims.ask(op="queries"))["total"], time.time()
            edits = (await sims.ask(op="edits"))["edits"]
            figures = await bot.stop()
    recovered = seen["all_seen_at"]
    return {
        "scale": {
            "open_jobs": jobs,
            "rss_mb": figures["rss_mb"],
            "rss_mb_idle": idle_figures["rss_mb"],
            "loop_lag_p99_ms": figures["loop_lag_p99_ms"],
            "loop_lag_max_ms": figures["loop_lag_max_ms"],
            "loop_stalled_pct": figures["loop_stalled_pct"],
            "loop_lag_sample_p99_ms": figures["loop_lag_sample_p99_ms"],
            # the loop thread's own CPU between two probe wake-ups (load-independent)
            "loop_busy_max_ms": figures["loop_busy_max_ms"],
            "loop_busy_p99_ms": figures["loop_busy_p99_ms"],
            "recovery_s": round(recovered - started_at, 2) if recovered else None,
            "recovered_jobs": seen["seeded_seen"],
            # the bot's CPU seconds until then (load-independent: this machine is shared)
            "recovery_cpu_s": round(cpu, 2),
            # the floor: the MiniMax adapter alone asking every task once, 64 at a time,
            # against a fresh simulator in the same run
            "bare_recovery_s": bare,
            "load_avg_1m": load,
            "start_to_ready_s": round(ready_at - started_at, 2),
            "status_calls_per_s": round((last - first) / (t2 - t1), 1),
            "status_budget_per_s": budget,
            "status_window_s": window,
            "card_edits": edits,
            # scheduled queries after recovery, and those that started over 1 s after due
            "scheduled_queries": figures["scheduled_queries"],
            "queries_over_1s_late": figures["queries_over_1s_late"],
        }
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=20.0, help="seconds after recovery")
    parser.add_argument("--quick", action="store_true", help="500 jobs, 6 s window")
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help="MiniMax's status queries a second (MINIMAX_STATUS_PER_SECOND) for the run",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(json.loads(args.child)))), flush=True)
        sys.exit(0)
    jobs, window, idle_for = args.jobs, args.window, 5.0
    if args.quick or quick():
        jobs, window, idle_for = min(jobs, 500), min(window, 6.0), 1.0
    target = chosen(args)
    print(json.dumps(asyncio.run(main(jobs, window, idle_for, args.budget, target)), indent=2))
