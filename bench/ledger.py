"""Reserve + settle throughput of the real money path on a real SQLite file; prints JSON.

One operation is what a member's video costs the database: ``JobDesk.create`` (the
policy read, the block, cool-down, caps, credits and budget checks, the job row and
its reservation, all in one ``BEGIN IMMEDIATE``) and then the settlement through
``JobRepository.transition``: every other job is refunded (cancelled while queued,
one transaction) and the rest charged (submitting, submitted, succeeded, delivered:
four). ``writers`` members run concurrently on the bot's one connection, each in
its own coroutine; every writer is a different member of the same server, and the
server has a daily budget, so the budget's spend query runs on every reservation.

    .venv/bin/python -m bench.ledger [--ops 1200] [--writers 1 10 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from hailuo.jobs import JobDesk, JobRequest
from hailuo.quotas import GuildPolicies, QuotaPolicy
from hailuo.spec import JobSpec, Mode
from hailuo.status import JobStatus
from storage.db import Database

GUILD = 1
SPEC = JobSpec(mode=Mode.TEXT, prompt="a benchmark")
CHARGE = (JobStatus.SUBMITTING, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.DELIVERED)
PLENTY = 10**6


async def writer(desk: JobDesk, member: int, ops: int, latencies: list[float]) -> None:
    for n in range(ops):
        started = time.perf_counter()
        job = await desk.create(JobRequest(GUILD, 2, member, SPEC))
        latencies.append(time.perf_counter() - started)
        path = (JobStatus.CANCELLED,) if n % 2 else CHARGE
        for status in path:
            job = await desk.jobs.transition(job, status, time.time())


async def level(folder: Path, writers: int, ops: int) -> dict[str, float | int]:
    db = await Database.open(folder / f"bench-{writers}.sqlite3")
    try:
        defaults = QuotaPolicy(
            daily_credits=PLENTY, max_jobs_per_member=PLENTY, max_jobs_per_guild=PLENTY
        )
        policies = GuildPolicies(db, defaults, time.time)
        await policies.set_budget(GUILD, 0, daily=PLENTY, monthly=None)
        desk = JobDesk(db, clock=time.time, policy=policies, on_created=lambda: None)
        each = max(1, ops // writers)
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(writer(desk, 1000 + w, each, latencies) for w in range(writers)))
        seconds = time.perf_counter() - started
        spent = (await desk.usage(GUILD)).today
        assert spent == writers * (each - each // 2)  # the charged half; refunds net out
        quantiles = statistics.quantiles(latencies, n=100)
        return {
            "writers": writers,
            "operations": writers * each,
            "seconds": round(seconds, 3),
            "operations_per_second": round(writers * each / seconds, 1),
            "reserve_ms_p50": round(quantiles[49] * 1000, 2),
            "reserve_ms_p99": round(quantiles[98] * 1000, 2),
        }
    finally:
        await db.close()


async def main(ops: int, writer_counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        results = [await level(Path(folder), n, ops) for n in writer_counts]
    print(
        json.dumps(
            {
                "benchmark": "ledger reserve+settle (JobDesk.create + JobRepository.transition)",
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "settle_mix": "half refunded (1 transition), half charged (4 transitions)",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1200, help="operations per level")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.writers))
