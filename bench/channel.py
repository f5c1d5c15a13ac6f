"""How long 50 deliveries into one Discord channel take, through the real bot; prints JSON.

The real bot (bot.py's object graph, the real discord.py client) runs against the loopback
Discord simulator, which enforces 5 message creates and 5 edits per 5 s per channel, and
the MiniMax simulator, which finishes each task at its first query. 25 members ask for 2
videos each in one channel at once; the figures are the seconds from the first command to
the last video, from the first video to the last (the channel's own pace) and until every
status card shows its end (card edits wait behind deliveries), the
messages created or edited, the 429s Discord answered and what the outbox coalesced. With
``--chaos`` every provider call also fails at random (30 % HTTP 500, 10 % rate limits),
as in ``tests/test_busy_channel.py``.

    .venv/bin/python -m bench.channel [--jobs 50] [--chaos]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

from tests.discord_sim import DiscordSimulator, SimInteraction
from tests.e2e import bot_env, channel, minimax_env, running_bot
from tests.sims.minimax import MiniMaxSimulator

MESSAGE_ROUTES = re.compile(r"^/channels/\d+/messages(/\d+)?$")


def ended(inter: SimInteraction) -> bool:
    text = str(inter.original_message.embeds) if inter.original_message else ""
    return "Delivered" in text or "refunded" in text


async def run(jobs: int, chaos: bool, folder: Path) -> dict[str, object]:
    async with DiscordSimulator() as discord_sim, MiniMaxSimulator(polls_until_done=1) as mm:
        if chaos:
            mm.chaos(seed=1, errors=0.3, rate_limits=0.1)
        env = bot_env(
            discord_sim,
            folder / "channel.sqlite3",
            MINIMAX_SUBMITS_PER_MINUTE="600",
            **minimax_env(mm),
        )
        room = channel(discord_sim)
        members = [8_000_000 + n for n in range(max(1, jobs // 2))]
        async with running_bot(env) as app:
            started = time.time()
            interactions = [
                await discord_sim.send_slash(
                    ["hailuo", "text"],
                    {"prompt": f"bench {n}"},
                    user_id=members[n % len(members)],
                    channel_id=room.channel_id,
                )
                for n in range(jobs)
            ]
            await asyncio.gather(*(i.wait_response() for i in interactions))
            await discord_sim.wait_for(lambda: all(ended(i) for i in interactions), timeout=1800)
            finished = time.time()
            outbox = app.bot.outbox
            assert outbox is not None
            stats = outbox.stats
        videos = sorted(m.created_at for m in room.videos())
        messages = [
            c
            for c in discord_sim.calls
            if c.ok and c.method in ("POST", "PATCH") and MESSAGE_ROUTES.match(c.path)
        ]
        return {
            "jobs": jobs,
            "chaos": chaos,
            "delivered": len(videos),
            "seconds_first_command_to_last_video": round(videos[-1] - started, 1)
            if videos
            else None,
            "seconds_until_every_card_shows_its_end": round(finished - started, 1),
            "seconds_first_to_last_video": round(videos[-1] - videos[0], 1) if videos else None,
            "messages_created_or_edited": len(messages),
            "discord_429s": len(discord_sim.too_many_requests()),
            "outbox_edits_superseded": stats.superseded,
            "outbox_429s_waited": stats.rate_limited,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--chaos", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(run(args.jobs, args.chaos, Path(folder)))
    print(json.dumps({"channel": result}, indent=2))


if __name__ == "__main__":
    main()
