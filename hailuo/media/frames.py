"""A video's last frame as a PNG, with the bundled ffmpeg (``imageio-ffmpeg``): the first
frame of an Extend job (issue 15, item 3).

``-sseof -1`` seeks to the last second and ``-update 1`` rewrites one image file per
decoded frame, so what is left is the last frame, exactly as decoded (PNG: lossless;
the image intake re-encodes it for the providers afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import imageio_ffmpeg

#: How long a frame grab may take before it is given up (a 10 s 1080P clip takes < 1 s).
TIMEOUT = 60.0


class FrameError(Exception):
    """ffmpeg could not take a frame of the file (it is no decodable video)."""


def frame_args(ffmpeg: str, source: Path, target: Path) -> list[str]:
    """The command that leaves ``source``'s last frame in ``target`` (PNG)."""
    return [
        *(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
        *("-sseof", "-1", "-i", str(source)),
        *("-an", "-update", "1", "-f", "image2", "-c:v", "png", str(target)),
    ]


async def last_frame(source: Path, *, ffmpeg: str | None = None) -> bytes:
    """The PNG bytes of ``source``'s last frame; FrameError if there is none."""
    exe = ffmpeg or str(imageio_ffmpeg.get_ffmpeg_exe())
    with tempfile.TemporaryDirectory(prefix="hailuo-frame-") as tmp:
        target = Path(tmp) / "last.png"
        process = await asyncio.create_subprocess_exec(
            *frame_args(exe, source, target),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise FrameError("ffmpeg timed out") from None
        if process.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            raise FrameError(err.decode("utf-8", "replace")[-200:] or "no frame")
        return target.read_bytes()
