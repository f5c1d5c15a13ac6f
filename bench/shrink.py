"""Shrink to fit: seconds and bytes to re-encode a big 6 s 1080p clip under 10 MiB; prints JSON.

The clip is real H.264 + AAC made from ffmpeg's ``testsrc`` under moving noise at
40 Mbit/s (about 30 MB), so it cannot shrink for free; it is re-encoded by
``hailuo.media.shrink.Shrinker`` (the bundled ffmpeg, as the bot runs it) against the
default 10 MiB upload limit. ``seconds`` is the median wall time of ``--runs``
encodes, probe included; ``bytes`` the size of the result (the median run's).
Noise is the worst case for an encoder: a real Hailuo video shrinks faster.

    .venv/bin/python -m bench.shrink [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from hailuo.media.shrink import Shrinker
from tests.media import noisy_mp4

LIMIT = 10 * 1024 * 1024
SECONDS, WIDTH, HEIGHT, BITRATE = 6, 1920, 1080, 40_000_000


async def measure(runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="hailuo-bench-") as tmp:
        source = Path(tmp) / "clip.mp4"
        source.write_bytes(noisy_mp4(SECONDS, WIDTH, HEIGHT, BITRATE))
        shrinker = Shrinker(directory=Path(tmp))
        timings: list[tuple[float, int, int]] = []
        for _ in range(runs):
            started = time.perf_counter()
            shrunk = await shrinker.shrink(source, LIMIT)
            timings.append((time.perf_counter() - started, shrunk.size, shrunk.attempts))
            shrunk.discard()
        seconds, size, attempts = sorted(timings)[len(timings) // 2]
        return {
            "shrink": {
                "seconds": round(seconds, 2),
                "bytes": size,
                "attempts": attempts,
                "source_bytes": source.stat().st_size,
                "limit_bytes": LIMIT,
                "clip": f"{SECONDS} s {WIDTH}x{HEIGHT} testsrc+noise, H.264 + AAC",
                "runs": [round(t, 2) for t, _, _ in timings],
            }
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    print(json.dumps(asyncio.run(measure(1 if quick else args.runs)), indent=2))
