"""The simulators of a benchmark, in a process of their own, driven over stdin/stdout.

A benchmark measures the bot's own cost, so the loopback Discord and the MiniMax
simulator must not share its process (nor its event loop, nor its memory). This
host starts them, prints one JSON line with their addresses, then answers one
JSON line per command read from stdin:

- ``{"op": "burst", "size": N, "members": M}``: N simultaneous ``/hailuo text``
  commands from M members; answers each one's latency (dispatch to the first
  callback recorded, seconds) and HTTP status.
- ``{"op": "seed", "count": N}``: N MiniMax tasks that stay running, each with a
  status card (a bot message) in the first channel; answers ``[[task_id,
  message_id], ...]``.
- ``{"op": "queries"}``: how many status queries arrived, how many distinct seeded
  tasks were queried, and the wall time (``time.time()``, shared by every process of
  the machine) at which the last of them was first queried.
- ``{"op": "edits"}``: how many message edits the bot made.
- ``{"op": "quit"}``.

The leading underscore keeps ``python -m bench`` from running it as a benchmark.

    .venv/bin/python -m bench._simhost [--upload-limit-mb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import web

# Imports of the project's simulators, in one place (module paths may move).
from tests.discord_sim import DiscordSimulator
from tests.sims.minimax import MiniMaxSimulator, SimTask

MIB = 1024 * 1024


class CountingMiniMax(MiniMaxSimulator):
    """MiniMax's simulator that also notes when each task was first queried."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.queries = 0
        self.first_query: dict[str, float] = {}
        self.seeded: set[str] = set()
        self.all_seen_at: float | None = None

    async def _query(self, request: web.Request) -> web.StreamResponse:
        self.queries += 1
        task_id = request.query.get("task_id", "")
        if task_id not in self.first_query:
            self.first_query[task_id] = time.time()
            if (
                self.all_seen_at is None
                and self.seeded
                and len(self.first_query.keys() & self.seeded) == len(self.seeded)
            ):
                self.all_seen_at = time.time()
        # Recorded requests would grow without bound over a long run; keep none.
        response = await super()._query(request)
        self.requests.clear()
        return response


async def burst(sim: DiscordSimulator, size: int, members: int) -> dict[str, Any]:
    interactions = await asyncio.gather(
        *(
            sim.send_slash(["hailuo", "text"], {"prompt": f"bench {n}"}, user_id=10_000 + n % members)
            for n in range(size)
        )
    )
    answers = await asyncio.gather(*(i.wait_response(timeout=30.0) for i in interactions))
    return {
        "latencies": [a.time - i.dispatched_at for a, i in zip(answers, interactions, strict=True)],
        "statuses": [a.status for a in answers],
    }


def seed(discord_sim: DiscordSimulator, mm: CountingMiniMax, count: int) -> list[list[Any]]:
    channel = discord_sim.guilds[0].channels[0]
    pairs: list[list[Any]] = []
    body = {"model": "MiniMax-Hailuo-02", "prompt": "bench", "duration": 6, "resolution": "768P"}
    for _ in range(count):
        task_id = str(next(mm._task_ids))
        mm.tasks[task_id] = SimTask(task_id, body, None, mm.video)
        mm.seeded.add(task_id)
        message = discord_sim.new_message(channel, {"content": "", "embeds": []}, [])
        pairs.append([task_id, message.id])
    return pairs


async def serve(upload_limit: int) -> None:
    limit = upload_limit
    async with (
        DiscordSimulator(upload_limit=limit, attachment_size_limit=limit) as discord_sim,
        CountingMiniMax(polls_until_done=None) as mm,
    ):
        guild = discord_sim.guilds[0]
        hello = {
            "DISCORD_API_BASE_URL": discord_sim.api_base,
            "DISCORD_GATEWAY_URL": discord_sim.gateway_url,
            "MINIMAX_API_KEY": mm.api_key,
            "MINIMAX_BASE_URL": mm.base_url,
            "guild_id": guild.id,
            "channel_id": guild.channels[0].id,
        }
        print(json.dumps(hello), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            op = command["op"]
            reply: Any
            if op == "burst":
                reply = await burst(discord_sim, command["size"], command.get("members", 20))
            elif op == "seed":
                reply = seed(discord_sim, mm, command["count"])
            elif op == "queries":
                reply = {
                    "total": mm.queries,
                    "seeded_seen": len(mm.first_query.keys() & mm.seeded),
                    "all_seen_at": mm.all_seen_at,
                }
            elif op == "edits":
                reply = {"edits": len(discord_sim.find_calls("PATCH"))}
            elif op == "quit":
                print("{}", flush=True)
                return
            else:
                reply = {"error": f"unknown op {op!r}"}
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload-limit-mb", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(serve(args.upload_limit_mb * MIB))
