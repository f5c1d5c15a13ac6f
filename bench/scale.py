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
  query for every open job;
- ``status_calls_per_s``: the queries a second after recovery, over ``--window`` s.

    .venv/bin/python -m bench.scale [--jobs 10000] [--window 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from bench._common import ROOT, SimHost, quick, rss_mb
from hailuo.jobs.cards import seen_digest
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus

# The project's imports, in one place (module paths may move).
from hailuo.money.quotas import current_period
from storage.db import Database

PROBE = 0.01
RECOVERY_CAP = 90.0


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


async def seed(path: Path, sims: SimHost, count: int) -> None:
    """``count`` open MiniMax jobs, due now, each with its card in the simulator (and, as
    the previous process left it, the digest of what that card shows)."""
    db = await Database.open(path)
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

    async def probe() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(PROBE)
            lates.append(max(0.0, loop.time() - before - PROBE))

    async def memory() -> None:
        while not stop.is_set():
            rss.append(rss_mb())
            await asyncio.sleep(0.5)

    print(json.dumps({"started_at": time.time()}), flush=True)
    probing = asyncio.create_task(probe())
    watching = asyncio.create_task(memory())
    started = loop.time()
    async with running_bot(env):
        print(json.dumps({"ready_at": time.time()}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
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

    async def stop(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        figures = await self.line()
        await self.proc.wait()
        return figures


async def main(jobs: int, window: float, idle_for: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        async with SimHost() as sims:
            idle = Bot(sims.env(Path(tmp) / "idle.sqlite3"))
            await idle.start()
            await idle.line()  # ready
            await asyncio.sleep(idle_for)
            idle_figures = await idle.stop()

            path = Path(tmp) / "open.sqlite3"
            await seed(path, sims, jobs)
            bot = Bot(sims.env(path))
            started_at = await bot.start()
            ready_at = float((await bot.line())["ready_at"])
            deadline = time.monotonic() + RECOVERY_CAP
            seen: dict[str, Any] = await sims.ask(op="queries")
            while seen["all_seen_at"] is None and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                seen = await sims.ask(op="queries")
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
            "recovery_s": round(recovered - started_at, 2) if recovered else None,
            "recovered_jobs": seen["seeded_seen"],
            "start_to_ready_s": round(ready_at - started_at, 2),
            "status_calls_per_s": round((last - first) / (t2 - t1), 1),
            "status_window_s": window,
            "card_edits": edits,
        }
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=20.0, help="seconds after recovery")
    parser.add_argument("--quick", action="store_true", help="500 jobs, 6 s window")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(json.loads(args.child)))), flush=True)
        sys.exit(0)
    jobs, window, idle_for = args.jobs, args.window, 5.0
    if args.quick or quick():
        jobs, window, idle_for = min(jobs, 500), min(window, 6.0), 1.0
    print(json.dumps(asyncio.run(main(jobs, window, idle_for)), indent=2))
