"""Shrink a video to fit an upload limit: an ffmpeg re-encode, off the event loop.

A result over the channel's upload limit is re-encoded to H.264 + AAC with
``+faststart`` (Discord and browsers stream from the front) at a bitrate computed
from the limit and the duration, so the member still gets the video inline.
The duration is probed first with ``ffmpeg -i`` (no ffprobe is bundled with
``imageio-ffmpeg``). A single-pass average-bitrate encode lands within a few
per cent of its target; when it misses, a second attempt aims lower by the
measured overshoot. When even the lowest sensible bitrate cannot fit (a long
video against a tiny limit) nothing is encoded at all.

ffmpeg runs as a subprocess (``asyncio.create_subprocess_exec``: the event loop
only waits on it) with a timeout, at most ``concurrency`` at a time, since an
encode takes whole cores. Every failure (no ffmpeg, a corrupt file, a timeout,
an encode that still misses) is a ``ShrinkFailed``: the caller then posts a link.
The encode's output is a temporary file that is deleted on every path but
success, where the caller owns it (``ShrunkVideo.discard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

log = logging.getLogger(__name__)

#: Share of the limit the audio + video bitrates may fill: the MP4 boxes and the
#: encoder's overshoot (a few per cent, ~10 % on pure noise) live in the rest.
HEADROOM = 0.90
#: Audio is always budgeted (a silent source simply leaves the room unused).
AUDIO_BPS = 96_000
#: Below this video bitrate the result would be mush: post a link instead.
MIN_VIDEO_BPS = 150_000
#: Highest output height for a video bitrate: fewer pixels where bits are scarce.
HEIGHT_FOR_BITRATE = ((2_500_000, None), (1_200_000, 720), (500_000, 480), (0, 360))
#: A second attempt aims this much below the limit, scaled by the first's overshoot.
RETRY_MARGIN = 0.92

_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_AUDIO = re.compile(r"Stream #\d+:\d+.*: Audio: ")


class ShrinkFailed(Exception):
    """The video could not be made to fit: the caller posts a link instead."""


@dataclass(frozen=True)
class Probe:
    """What ``ffmpeg -i`` says about a file: enough to plan an encode."""

    duration: float
    has_audio: bool


@dataclass(frozen=True)
class EncodePlan:
    """One encode: the video bitrate, the audio bitrate and the height cap (None: keep)."""

    video_bps: int
    audio_bps: int
    max_height: int | None


@dataclass(frozen=True)
class ShrunkVideo:
    """The encoded file, owned by the caller once returned."""

    path: Path
    size: int
    attempts: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def plan_encode(limit: int, duration: float, *, has_audio: bool) -> EncodePlan | None:
    """The bitrates that fill ``HEADROOM`` of ``limit`` bytes over ``duration`` seconds.

    None when the video's share would fall under ``MIN_VIDEO_BPS``: it cannot fit.
    """
    if duration <= 0 or limit <= 0:
        return None
    audio = AUDIO_BPS if has_audio else 0
    total = limit * 8 * HEADROOM / duration
    return _plan(int(total - audio), audio)


def retry_plan(plan: EncodePlan, got: int, limit: int) -> EncodePlan | None:
    """A lower target after an encode of ``got`` bytes missed ``limit``; None: give up."""
    if got <= 0:
        return None
    scale = limit * RETRY_MARGIN / got
    return _plan(int(plan.video_bps * scale) - int(plan.audio_bps * (1 - scale)), plan.audio_bps)


def _plan(video_bps: int, audio_bps: int) -> EncodePlan | None:
    if video_bps < MIN_VIDEO_BPS:
        return None
    height = next(h for floor, h in HEIGHT_FOR_BITRATE if video_bps >= floor)
    return EncodePlan(video_bps, audio_bps, height)


def parse_probe(text: str) -> Probe:
    """Read the duration and whether there is audio from ``ffmpeg -i``'s stderr."""
    match = _DURATION.search(text)
    if match is None:
        raise ShrinkFailed("no duration: not a video ffmpeg can read")
    hours, minutes, seconds = match.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return Probe(duration=duration, has_audio=_AUDIO.search(text) is not None)


def encode_args(ffmpeg: str, source: Path, target: Path, plan: EncodePlan) -> list[str]:
    """The ffmpeg command line of one average-bitrate encode to H.264 + AAC, moov first."""
    video_k = max(1, plan.video_bps // 1000)
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(source)]
    args += ["-map", "0:v:0", "-map", "0:a:0?", "-map_metadata", "-1", "-sn", "-dn"]
    if plan.max_height is not None:
        # Never upscale; -2 keeps the width even, as yuv420p needs.
        args += ["-vf", f"scale=-2:'min({plan.max_height},ih)'"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    args += ["-b:v", f"{video_k}k", "-maxrate", f"{video_k}k", "-bufsize", f"{video_k}k"]
    if plan.audio_bps:
        args += ["-c:a", "aac", "-b:a", f"{plan.audio_bps // 1000}k"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(target)]
    return args


class Shrinker:
    """Re-encodes videos to fit a byte limit, a bounded number at a time."""

    def __init__(
        self,
        ffmpeg: str | None = None,
        *,
        timeout: float = 300.0,
        concurrency: int = 1,
        directory: Path | None = None,
    ) -> None:
        #: None: the binary ``imageio-ffmpeg`` ships (looked up at first use).
        self.ffmpeg = ffmpeg
        self.timeout = timeout
        self.directory = directory
        self._slots = asyncio.Semaphore(concurrency)

    def _exe(self) -> str:
        if self.ffmpeg is None:
            self.ffmpeg = str(imageio_ffmpeg.get_ffmpeg_exe())
        return self.ffmpeg

    async def shrink(self, source: Path, limit: int) -> ShrunkVideo:
        """A copy of ``source`` re-encoded to at most ``limit`` bytes. Raises ShrinkFailed."""
        async with self._slots:
            probe = await self.probe(source)
            plan = plan_encode(limit, probe.duration, has_audio=probe.has_audio)
            attempts = 0
            while plan is not None and attempts < 2:
                attempts += 1
                target = self._new_file(source)
                try:
                    await self._encode(source, target, plan)
                    size = target.stat().st_size
                except BaseException:
                    target.unlink(missing_ok=True)
                    raise
                if 0 < size <= limit:
                    log.info(
                        "shrank to %d bytes (limit %d) in %d attempt(s)", size, limit, attempts
                    )
                    return ShrunkVideo(target, size, attempts)
                target.unlink(missing_ok=True)
                log.info("encode missed: %d bytes for a limit of %d", size, limit)
                plan = retry_plan(plan, size, limit)
        raise ShrinkFailed(f"cannot fit {probe.duration:.1f} s into {limit} bytes")

    async def probe(self, source: Path) -> Probe:
        """Duration and audio presence, from ``ffmpeg -i`` (it exits 1: no output named)."""
        try:
            _, stderr = await self._run(
                [self._exe(), "-hide_banner", "-nostdin", "-i", str(source)]
            )
        except OSError as exc:
            raise ShrinkFailed(f"ffmpeg did not start: {type(exc).__name__}") from None
        return parse_probe(stderr)

    async def _encode(self, source: Path, target: Path, plan: EncodePlan) -> None:
        try:
            code, stderr = await self._run(encode_args(self._exe(), source, target, plan))
        except OSError as exc:
            raise ShrinkFailed(f"ffmpeg did not start: {type(exc).__name__}") from None
        if code != 0:
            raise ShrinkFailed(f"ffmpeg exited {code}: {stderr.strip()[-300:]}")

    async def _run(self, args: list[str]) -> tuple[int, str]:
        """Run ffmpeg with the timeout; a process past it is killed and reaped."""
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            await _kill(process)
            raise ShrinkFailed(f"ffmpeg took over {self.timeout:g} s") from None
        except BaseException:  # our own cancellation, at shutdown
            await _kill(process)
            raise
        return process.returncode or 0, stderr.decode("utf-8", "replace")

    def _new_file(self, source: Path) -> Path:
        handle, name = tempfile.mkstemp(
            prefix="hailuo-shrink-", suffix=".mp4", dir=self.directory or source.parent
        )
        os.close(handle)
        return Path(name)


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Stop ffmpeg and reap it, even while being cancelled."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await asyncio.shield(process.wait())
