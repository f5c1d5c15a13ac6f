"""First-answer latency of ``/hailuo text`` under load, through the real bot; prints JSON.

The real bot (bot.py's object graph, the real discord.py client) runs in this
process; the loopback Discord and MiniMax simulators run in another one
(``bench._simhost``), so what is measured is the bot's own cost. A burst of N
simultaneous interactions from 20 members is dispatched over the gateway; each
one's latency is the time from dispatch to the simulator recording its first
callback (Discord's deadline is 3 s). The provider holds every task, so nothing is
delivered during the burst; members have credits enough that every request becomes
a job.

The floor, measured in the same run through the same simulator: a bare discord.py
client that answers every interaction at once (``bare_p99_ms``).

    .venv/bin/python -m bench.answer [--burst 1 50 200]

On PostgreSQL (``bench._pg``): ``--postgresql`` (a throwaway durable server) or
``--database postgresql://…`` / ``HAILUO_BENCH_DATABASE``; each burst's bot gets a
fresh database through ``HAILUO_DATABASE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import discord
import yarl

from bench._common import SimHost, percentile
from bench._pg import PgBench, add_arguments, chosen
from tests.e2e import running_bot  # the project's import, in one place

MEMBERS = 20
DEADLINE = 3.0


def figures(answer: dict[str, Any]) -> dict[str, float | int]:
    latencies = sorted(answer["latencies"])
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        # Late, or refused by Discord (the simulator refuses a callback after 3 s).
        "missed": sum(
            1
            for v, s in zip(answer["latencies"], answer["statuses"], strict=True)
            if v > DEADLINE or s not in (200, 204)
        ),
    }


async def real_burst(
    size: int, folder: Path, database: str | None = None
) -> dict[str, float | int]:
    """``database``: a PostgreSQL URL; None: a SQLite file in ``folder``."""
    async with SimHost() as sims:
        env = sims.env(
            database or folder / f"burst-{size}.sqlite3",  # type: ignore[arg-type]
            HAILUO_DAILY_CREDITS="1000",
            HAILUO_MAX_JOBS_PER_MEMBER="1000",
            HAILUO_MAX_JOBS_PER_GUILD="100000",
            HAILUO_POLL_SECONDS="5",
        )
        async with running_bot(env) as app:
            answer = await sims.ask(op="burst", size=size, members=MEMBERS)
            # The bot creates the jobs after it answered: let it finish before it stops.
            made = await made_jobs(app.bot.desk, size)
    return {**figures(answer), "jobs": made}


async def made_jobs(desk: Any, size: int, within: float = 60.0) -> int:
    """How many jobs the burst made, once it made them all (or ``within`` seconds passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        made = sum((await desk.count_by_status()).values())
        if made >= size or loop.time() > deadline:
            return made
        await asyncio.sleep(0.1)


async def bare_burst(size: int) -> dict[str, float | int]:
    """A bare discord.py client that answers each interaction at once: the floor."""
    async with SimHost() as sims:
        saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = sims.hello["DISCORD_API_BASE_URL"]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            sims.hello["DISCORD_GATEWAY_URL"]
        )
        client = discord.Client(intents=discord.Intents.default())

        @client.event
        async def on_interaction(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        runner = asyncio.create_task(client.start("sim-token"))
        try:
            await asyncio.wait_for(client.wait_until_ready(), 30)
            answer = await sims.ask(op="burst", size=size, members=MEMBERS)
        finally:
            await client.close()
            await runner
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
    return figures(answer)


async def main(sizes: list[int], target: str | None = None) -> dict[str, Any]:
    real: dict[str, dict[str, float | int]] = {}
    bare: dict[str, dict[str, float | int]] = {}
    engine: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        if target is None:
            for size in sizes:
                bare[str(size)] = await bare_burst(size)
                real[str(size)] = await real_burst(size, Path(tmp))
        else:
            async with PgBench(target) as pg:
                for size in sizes:
                    bare[str(size)] = await bare_burst(size)
                    real[str(size)] = await real_burst(size, Path(tmp), await pg.fresh())
                engine = pg.describe()
    return {
        "answer": {
            "p50_ms": {k: v["p50_ms"] for k, v in real.items()},
            "p99_ms": {k: v["p99_ms"] for k, v in real.items()},
            "max_ms": {k: v["max_ms"] for k, v in real.items()},
            "missed": sum(int(v["missed"]) for v in real.values()),
            "missed_by_burst": {k: v["missed"] for k, v in real.items()},
            "jobs_made": {k: v["jobs"] for k, v in real.items()},
            "bare_p50_ms": {k: v["p50_ms"] for k, v in bare.items()},
            "bare_p99_ms": {k: v["p99_ms"] for k, v in bare.items()},
            "bare_max_ms": {k: v["max_ms"] for k, v in bare.items()},
            "members": MEMBERS,
            **engine,
        }
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--quick", action="store_true", help="accepted; a burst is quick already")
    add_arguments(parser)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.burst, chosen(args))), indent=2))
