"""Status calls and delivery lag of the real worker's polling schedule (simulated time); JSON.

The real worker (``hailuo.jobs.worker.Worker`` with its desk, on a real SQLite file) follows
jobs that take 60, 120 and 240 s at the provider (each job's time drawn within ±15 %
of its class, so finishes do not line up with the schedule). The clock is injected:
it jumps from one due step to the next, so 240 s of a task take milliseconds. The
provider is an in-process stand-in of the ``Provider`` protocol that says a task is
running until its time has come (network cost is not what this measures).

- ``calls_per_job``: status queries per job until the one that saw it finished;
- ``lag_p50_s`` / ``lag_p95_s``: from the provider's finish to that query;
- ``with_callbacks``: the same with the provider calling back at its finish (the
  callback route's ``Worker.poll_soon``) while polling goes on as the fallback;
- each duration class is its own kind of task (768P 6 s, 1080P 6 s, 768P 10 s), and
  the bot first follows one round of each (``cold``: it starts from its prior and
  learns), then the measured round with what it learned from its own finished jobs;
- ``anchor_calls_per_job`` / ``anchor_lag_*``: the same tasks polled every 20 s from
  their submission, as MiniMax's own MCP server does;
- every figure pools the jobs of three seeds (``SEEDS``), each drawing its own run times
  and the bot's own draws (the schedule's dither, its exploring jobs, what a finish teaches).

    .venv/bin/python -m bench.polling [--jobs 20] [--seeds 13 14 15] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import percentile, quick
from hailuo.model.provider import Phase, PreparedInput, SubmitReceipt, TaskState
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus

# The project's imports, in one place (module paths may move).
from hailuo.money.quotas import QuotaPolicy
from storage.db import Database
from tests.core import build_core
from tests.support import FakeClock

DURATIONS = (60, 120, 240)
#: The kind of task behind each duration class: (resolution, seconds of video).
KINDS = {60: ("768P", 6), 120: ("1080P", 6), 240: ("768P", 10)}
SPREAD = 0.15
ANCHOR_EVERY = 20.0
PLENTY = 10**6


class TimedProvider:
    """A provider whose tasks finish ``duration`` seconds after their submission: the
    duration of the job named in the prompt (``job <n>``, the ``n``-th of all rounds), as
    jobs are not submitted in the order they were created (submission slots, fairness)."""

    name = "minimax"

    def __init__(self, clock: FakeClock, durations: list[float]) -> None:
        self.clock = clock
        self.durations = durations
        self.finish: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.seen_done: dict[str, float] = {}
        #: The job (its index in ``durations``) behind each task.
        self.index: dict[str, int] = {}

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        task_id = f"t{len(self.finish)}"
        index = int(job.spec.prompt.split()[1])
        self.index[task_id] = index
        self.finish[task_id] = self.clock() + self.durations[index]
        self.calls[task_id] = 0
        return SubmitReceipt(task_id)

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        now = self.clock()
        if task_id in self.seen_done:
            return TaskState(Phase.SUCCEEDED, 100, locator="file")
        self.calls[task_id] += 1
        if now >= self.finish[task_id]:
            self.seen_done[task_id] = now
            return TaskState(Phase.SUCCEEDED, 100, locator="file")
        return TaskState(Phase.RUNNING, progress=50)

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        raise NotImplementedError("not delivered in this benchmark")


def summary(calls: list[float], lags: list[float]) -> dict[str, float]:
    return {
        "calls_per_job": round(statistics.mean(calls), 2),
        "lag_mean_s": round(statistics.mean(lags), 2),
        "lag_p50_s": round(statistics.median(lags), 2),
        "lag_p95_s": round(percentile(lags, 0.95), 2),
    }


async def follow(
    folder: Path, rounds: list[list[float]], classes: list[int], callbacks: bool, seed: int
) -> TimedProvider:
    """Run the worker round after round until every job's finish was seen (job ``n`` has
    the ``n``-th duration of all rounds together); the bot draws from ``seed``."""
    clock = FakeClock()
    provider = TimedProvider(clock, [d for durations in rounds for d in durations])
    db = await Database.open(folder / f"polling-{callbacks}.sqlite3")
    policy = QuotaPolicy(
        daily_credits=PLENTY, max_jobs_per_member=PLENTY, max_jobs_per_guild=PLENTY
    )
    try:
        async with aiohttp.ClientSession() as session:
            providers: dict[str, Any] = {"minimax": provider}
            # A stream of its own: not the one the run times were drawn from.
            rng = random.Random(f"bot {seed}")
            core = build_core(db, clock, session, providers, policy=policy, rng=rng)
            if callbacks:
                url = lambda name, job_id: f"https://bot.example/cb/{job_id}"  # noqa: E731
                core.worker.schedule.callback_url = url
                core.worker.submitter.callback_url = url
            total = 0
            for durations in rounds:
                total += len(durations)
                await one_round(core, clock, provider, classes, total, callbacks)
    finally:
        await db.close()
    return provider


async def one_round(
    core: Any,
    clock: FakeClock,
    provider: TimedProvider,
    classes: list[int],
    total: int,
    callbacks: bool,
) -> None:
    """Submit one job per entry of ``classes`` and follow them until all were seen done."""
    offset = total - len(classes)
    for n, cls in enumerate(classes):
        resolution, seconds = KINDS[cls]
        prompt = f"job {offset + n}"
        spec = JobSpec(mode=Mode.TEXT, prompt=prompt, resolution=resolution, duration=seconds)
        await core.new_job(spec, user_id=n)
    task_of: dict[int, str] = {}
    called_back: set[str] = set()
    while len(provider.seen_done) < total:
        await core.worker.tick()
        await core.worker.drain()
        now = clock()
        events: list[float] = []
        for job in await core.jobs.open_jobs():
            if job.provider_task_id is not None:
                task_of[job.id] = job.provider_task_id
            if job.status is JobStatus.SUCCEEDED:
                # Delivery is not measured: take the job off the worker's hands.
                await core.jobs.transition(job, JobStatus.DELIVERED, now)
            elif job.status in (JobStatus.SUBMITTED, JobStatus.RUNNING):
                events.append(job.next_poll_at)
            else:
                events.append(max(now + 0.1, job.next_attempt_at))
        if callbacks:
            for job_id, task_id in task_of.items():
                finish = provider.finish[task_id]
                if task_id in called_back:
                    continue
                if finish <= now:
                    called_back.add(task_id)
                    core.worker.poll_soon(job_id, "minimax")
                else:
                    events.append(finish)
            await core.worker.drain()  # the callback's query runs at its moment
            for job in await core.jobs.by_status(JobStatus.SUCCEEDED):
                await core.jobs.transition(job, JobStatus.DELIVERED, now)
        if not events:
            break
        clock.now = max(now + 0.01, min(events))


def anchor(durations: list[float]) -> tuple[list[float], list[float]]:
    """Polled every 20 s from submission: calls and lag, computed exactly."""
    calls = [math.ceil(d / ANCHOR_EVERY) for d in durations]
    lags = [c * ANCHOR_EVERY - d for c, d in zip(calls, durations, strict=True)]
    return [float(c) for c in calls], lags


#: Each seed draws its own run times and the bot's own draws; the figures pool the jobs of
#: every seed, so one draw of 20 jobs a class (a lag mean's standard error is about a
#: second) does not decide them.
SEEDS = (13, 14, 15)


async def main(per_class: int, seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    classes: list[int] = [d for d in DURATIONS for _ in range(per_class)]
    # (round, with callbacks) -> class -> the calls and lags of its jobs, every seed's.
    pooled: dict[tuple[str, bool], dict[int, tuple[list[float], list[float]]]] = {}
    anchor_pool: dict[int, tuple[list[float], list[float]]] = {c: ([], []) for c in DURATIONS}
    for seed in seeds:
        rng = random.Random(seed)
        warmup = [d * rng.uniform(1 - SPREAD, 1 + SPREAD) for d in classes]
        durations = [d * rng.uniform(1 - SPREAD, 1 + SPREAD) for d in classes]
        with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
            for callbacks in (False, True):
                provider = await follow(
                    Path(tmp), [warmup, durations], classes, callbacks, seed=seed
                )
                for name, offset in (("cold", 0), ("warm", len(classes))):
                    per = pooled.setdefault((name, callbacks), {c: ([], []) for c in DURATIONS})
                    for cls in DURATIONS:
                        tasks = [
                            t
                            for t, i in provider.index.items()
                            if offset <= i < offset + len(classes) and classes[i - offset] == cls
                        ]
                        per[cls][0].extend(float(provider.calls[t]) for t in tasks)
                        per[cls][1].extend(
                            provider.seen_done[t] - provider.finish[t] for t in tasks
                        )
        for cls in DURATIONS:
            calls, lags = anchor([d for d, c in zip(durations, classes, strict=True) if c == cls])
            anchor_pool[cls][0].extend(calls)
            anchor_pool[cls][1].extend(lags)

    def summarized(
        source: dict[int, tuple[list[float], list[float]]],
    ) -> dict[str, dict[str, float]]:
        return {str(cls): summary(*source[cls]) for cls in DURATIONS}

    anchored = summarized(anchor_pool)
    polled, called = summarized(pooled["warm", False]), summarized(pooled["warm", True])
    cold, cold_called = summarized(pooled["cold", False]), summarized(pooled["cold", True])

    def pick(source: dict[str, dict[str, float]], key: str) -> dict[str, float]:
        return {cls: figures[key] for cls, figures in source.items()}

    return {
        "polling": {
            "calls_per_job": pick(polled, "calls_per_job"),
            "lag_p50_s": pick(polled, "lag_p50_s"),
            "lag_p95_s": pick(polled, "lag_p95_s"),
            "lag_mean_s": pick(polled, "lag_mean_s"),
            "with_callbacks": {
                "calls_per_job": pick(called, "calls_per_job"),
                "lag_p50_s": pick(called, "lag_p50_s"),
                "lag_p95_s": pick(called, "lag_p95_s"),
                "lag_mean_s": pick(called, "lag_mean_s"),
            },
            "cold": {
                "calls_per_job": pick(cold, "calls_per_job"),
                "lag_p50_s": pick(cold, "lag_p50_s"),
                "lag_p95_s": pick(cold, "lag_p95_s"),
                "lag_mean_s": pick(cold, "lag_mean_s"),
                "with_callbacks_calls_per_job": pick(cold_called, "calls_per_job"),
                "with_callbacks_lag_p95_s": pick(cold_called, "lag_p95_s"),
            },
            "anchor_calls_per_job": pick(anchored, "calls_per_job"),
            "anchor_lag_p50_s": pick(anchored, "lag_p50_s"),
            "anchor_lag_p95_s": pick(anchored, "lag_p95_s"),
            "anchor_lag_mean_s": pick(anchored, "lag_mean_s"),
            "jobs_per_duration": per_class,
            "seeds": list(seeds),
            "duration_spread": SPREAD,
        }
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per duration class")
    parser.add_argument("--quick", action="store_true", help="3 jobs per class")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), help="the draws to pool (a holdout)"
    )
    args = parser.parse_args()
    per_class = min(args.jobs, 3) if args.quick or quick() else args.jobs
    print(json.dumps(asyncio.run(main(per_class, tuple(args.seeds))), indent=2))
