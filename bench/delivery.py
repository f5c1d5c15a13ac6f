"""Peak memory growth of the bot while it fetches and posts a 200 MB result; prints JSON.

The real bot (bot.py's object graph, the real discord.py client) runs in this
process; the loopback Discord and MiniMax simulators in another (``bench._simhost``),
so their copies of the file are not counted. The MiniMax task's result is a valid
MP4 of 200 MB; the channel takes uploads that large, so the bot downloads it and
posts it as an attachment. Once the bot is ready and the command answered, the
kernel's peak-RSS mark is reset (``/proc/self/clear_refs``) and the resident size
read; ``peak_rss_growth_mb`` is the peak (``VmHWM``) after the post minus that.

    .venv/bin/python -m bench.delivery [--mb 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import SimHost, quick, rss_mb
from tests.e2e import running_bot  # the project's import, in one place


def peak_mb() -> float:
    """This process's peak RSS since the last reset, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


async def main(megabytes: int) -> dict[str, Any]:
    limit_mb = max(25, int(megabytes * 1.3) + 1)
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        args = ("--upload-limit-mb", str(limit_mb), "--video-mb", str(megabytes))
        async with SimHost(*args, "--polls-until-done", "2") as sims:
            env = sims.env(Path(tmp) / "delivery.sqlite3", HAILUO_POLL_SECONDS="0.2")
            async with running_bot(env):
                answer = await sims.ask(op="burst", size=1, members=1)
                assert answer["statuses"] == [200], answer
                reset_peak()
                before = rss_mb()
                started = time.perf_counter()
                posted = await sims.ask(op="wait_video", timeout=300)
                seconds = time.perf_counter() - started
                peak = peak_mb()
    return {
        "delivery": {
            "peak_rss_growth_mb": round(peak - before, 1),
            "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1),
            "result_mb": megabytes,
            "posted_bytes": posted["bytes"],
            "seconds": round(seconds, 2),
        }
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the result, in MB")
    parser.add_argument("--quick", action="store_true", help="a 20 MB result")
    args = parser.parse_args()
    size = min(args.mb, 20) if args.quick or quick() else args.mb
    print(json.dumps(asyncio.run(main(size)), indent=2))
