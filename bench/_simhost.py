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
- ``{"op": "wait_video", "timeout": S}``: waits until a bot message in the first
  channel carries an MP4; answers its bytes.
- ``{"op": "quit"}``.

``--video-mb N`` makes every task's result a valid MP4 of N MB (a short clip and a
``free`` box of padding); ``--polls-until-done N`` finishes tasks after N queries
(by default they run until the end).

The leading underscore keeps ``python -m bench`` from running it as a benchmark.

    .venv/bin/python -m bench._simhost [--upload-limit-mb 10] [--video-mb N]
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
from tests.media import make_mp4
from tests.sims.minimax import MiniMaxSimulator, SimTask

MIB = 1024 * 1024


class CountingMiniMax(MiniMaxSimulator):
    """MiniMax's simulator that also notes when each task was first queried."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.queries = 0
        self.first_query: dict[str, float] = {}
        self.seeded: set[str] = set()
        self.seeded_seen = 0
        self.all_seen_at: float | None = None

    async def _query(self, request: web.Request) -> web.StreamResponse:
        self.queries += 1
        task_id = request.query.get("task_id", "")
        if task_id not in self.first_query:
            self.first_query[task_id] = time.time()
            if task_id in self.seeded:
                self.seeded_seen += 1
                if self.seeded_seen == len(self.seeded):
                    self.all_seen_at = time.time()
        # Recorded requests would grow without bound over a long run; keep none.
        response = await super()._query(request)
        self.requests.clear()
        return response


async def burst(sim: DiscordSimulator, size: int, members: int) -> dict[str, Any]:
    interactions = await asyncio.gather(
        *(
            sim.send_slash(
                ["hailuo", "text"], {"prompt": f"bench {n}"}, user_id=10_000 + n % members
            )
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


def padded_mp4(size: int) -> bytes:
    """A valid MP4 of ``size`` bytes: a short clip, then a ``free`` box of zeros."""
    clip = make_mp4()
    pad = max(8, size - len(clip))
    return clip + pad.to_bytes(4, "big") + b"free" + bytes(pad - 8)


async def wait_video(sim: DiscordSimulator, channel_id: int, within: float) -> dict[str, Any]:
    def video() -> int | None:
        for message in sim.channel_messages(channel_id):
            for attachment in message.attachments:
                if attachment.filename.endswith(".mp4"):
                    return len(attachment.data)
        return None

    size = await sim.wait_for(video, timeout=within)
    return {"bytes": size}


async def serve(upload_limit: int, video_mb: int | None, polls_until_done: int | None) -> None:
    limit = upload_limit
    options: dict[str, Any] = {"polls_until_done": polls_until_done}
    if video_mb:
        options["video"] = padded_mp4(video_mb * 1000 * 1000)
    async with (
        DiscordSimulator(upload_limit=limit, attachment_size_limit=limit) as discord_sim,
        CountingMiniMax(**options) as mm,
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
                    "seeded_seen": mm.seeded_seen,
                    "all_seen_at": mm.all_seen_at,
                }
            elif op == "edits":
                reply = {"edits": len(discord_sim.find_calls("PATCH"))}
            elif op == "wait_video":
                reply = await wait_video(discord_sim, guild.channels[0].id, command["timeout"])
            elif op == "quit":
                print("{}", flush=True)
                return
            else:
                reply = {"error": f"unknown op {op!r}"}
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload-limit-mb", type=int, default=10)
    parser.add_argument("--video-mb", type=int, default=None)
    parser.add_argument("--polls-until-done", type=int, default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.upload_limit_mb * MIB, args.video_mb, args.polls_until_done))
