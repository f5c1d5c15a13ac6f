"""First-answer latency of ``/hailuo text`` under load, through the real bot; prints JSON.

The real bot (bot.py's object graph, the real discord.py client) runs against the
loopback Discord and MiniMax simulators, as in the end-to-end tests. A burst of N
simultaneous interactions from 20 members is dispatched over the gateway; each one's
latency is the time from dispatch to the simulator recording its first callback
(Discord's deadline is 3 s). The provider holds every task, so nothing is delivered
during the burst; members have credits enough that every request becomes a job.
The simulators share the bot's process and event loop, so the figures include their
own work: a real bot answering real Discord has less to do.

    .venv/bin/python -m bench.answer [--burst 1 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
from pathlib import Path

from tests.discord_sim import DiscordSimulator
from tests.e2e import bot_env, minimax_env, running_bot
from tests.sims.minimax import MiniMaxSimulator

MEMBERS = 20


async def burst(size: int, folder: Path) -> dict[str, float | int]:
    async with DiscordSimulator() as discord_sim, MiniMaxSimulator(polls_until_done=None) as mm:
        env = bot_env(
            discord_sim,
            folder / f"burst-{size}.sqlite3",
            HAILUO_DAILY_CREDITS="1000",
            HAILUO_MAX_JOBS_PER_MEMBER="1000",
            HAILUO_MAX_JOBS_PER_GUILD="100000",
            **minimax_env(mm),
        )
        async with running_bot(env):
            interactions = await asyncio.gather(
                *(
                    discord_sim.send_slash(
                        ["hailuo", "text"], {"prompt": f"bench {n}"}, user_id=10_000 + n % MEMBERS
                    )
                    for n in range(size)
                )
            )
            answers = await asyncio.gather(*(i.wait_response() for i in interactions))
    latencies = sorted(a.time - i.dispatched_at for a, i in zip(answers, interactions, strict=True))
    accepted = sum(1 for a in answers if a.status == 200)
    return {
        "burst": size,
        "answered_200": accepted,
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p99": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1),
        "latency_ms_max": round(latencies[-1] * 1000, 1),
        "over_3s": sum(1 for value in latencies if value > 3.0),
    }


async def main(sizes: list[int]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        results = [await burst(size, Path(tmp)) for size in sizes]
    return {
        "benchmark": "first answer of /hailuo text",
        "python": platform.python_version(),
        "results": results,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, nargs="+", default=[1, 50, 200])
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.burst)), indent=2))
