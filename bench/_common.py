"""What the benchmarks share: the simulator host process, RSS readings, quick mode.

``BENCH_QUICK=1`` (set by ``python -m bench --quick``) asks every benchmark for its
smallest sizes: the same keys, fewer samples, for CI and a first look.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def quick() -> bool:
    """Whether this is a quick run (fewer samples, smaller sizes, same keys)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def rss_mb(pid: int | str = "self") -> float:
    """The resident set size of a process now, in MB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


class SimHost:
    """``bench._simhost`` in a subprocess: the simulators the bot talks to over loopback."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.hello: dict[str, Any] = {}

    async def __aenter__(self) -> SimHost:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._simhost",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        self.hello = await self._read()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.ask(op="quit"), 10)
                await asyncio.wait_for(self.proc.wait(), 10)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                self.proc.kill()
                await self.proc.wait()

    async def _read(self) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator host stopped")
        return json.loads(line)

    async def ask(self, **command: Any) -> Any:
        """Send one command and wait for its one-line answer."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read()

    def env(self, database: Path, **extra: str) -> dict[str, str]:
        """The bot's environment against these simulators (as tests/e2e.py's ``bot_env``)."""
        env = {
            "DISCORD_TOKEN": "sim-token",
            "DISCORD_API_BASE_URL": self.hello["DISCORD_API_BASE_URL"],
            "DISCORD_GATEWAY_URL": self.hello["DISCORD_GATEWAY_URL"],
            "MINIMAX_API_KEY": self.hello["MINIMAX_API_KEY"],
            "MINIMAX_BASE_URL": self.hello["MINIMAX_BASE_URL"],
            "HAILUO_DATABASE": str(database),
            "HAILUO_HTTP_PORT": "0",
            "HAILUO_ALLOW_PRIVATE_URLS": "1",
        }
        env.update(extra)
        return env


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]
