"""``python bot.py`` that stops in the first answer's gap, for a SIGKILL there.

``/hailuo text`` answers with the card, then stores the card's ids. This entry point
replaces that store: it writes the job id to the file named by ``GAP_TEST_MARKER`` and
waits for ever, so the test kills the process exactly between the answer and the ids.
Everything else is the real bot (``bot.main``), configured by its environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import bot  # noqa: E402 - after the path
from storage.jobs import JobRepository  # noqa: E402

MARKER = Path(os.environ["GAP_TEST_MARKER"])
_HELD: list[object] = []  # the paused command's task and event: never garbage-collected


async def _paused(
    self: JobRepository, job_id: int, channel_id: int, message_id: int, now: float
) -> None:
    forever = asyncio.Event()
    _HELD.extend([asyncio.current_task(), forever])
    MARKER.write_text(f"{job_id} {message_id}")
    await forever.wait()  # the test kills us here


JobRepository.set_status_message = _paused  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(bot.main())
