"""Real media files made on demand for tests, so the repository holds no binary blobs.

Videos are encoded by the ffmpeg binary that ships with ``imageio-ffmpeg`` (no system
ffmpeg needed) and images by Pillow. Both are *real* files: a decoder, Discord or a
provider would accept them, which a few magic bytes followed by zeros would not.

Encoding costs ~50 ms, so videos are cached by their parameters and a test session
encodes each variant once. Padding to a chosen size (``extra_bytes`` / ``mp4_of_size``)
appends a top-level MP4 ``free`` box: players skip it, it needs no re-encode, and it
makes "this file is over the upload limit" tests cheap.
"""

from __future__ import annotations

import functools
import io
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import imageio_ffmpeg
from PIL import Image

__all__ = [
    "VideoInfo",
    "ffmpeg_exe",
    "make_image",
    "make_mp4",
    "mp4_of_size",
    "noisy_mp4",
    "probe_video",
]

ImageFormat = Literal["PNG", "JPEG", "WEBP", "GIF"]
PathArg = str | os.PathLike[str] | None

#: Size of an MP4 box header (32-bit size + 4-byte type); the smallest possible padding.
BOX_HEADER = 8


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary (the same one on every machine that has the venv)."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@functools.lru_cache(maxsize=32)
def _encode_mp4(seconds: float, width: int, height: int, fps: int) -> bytes:
    """Encode a ``testsrc`` clip as H.264 yuv420p MP4 with the moov atom first.

    Cached: the same parameters always return the same bytes object within a session.
    ``+faststart`` matters because Discord and browsers stream from the front.
    """
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even dimensions, got {width}x{height}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        source = f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        cmd += ["-f", "lavfi", "-i", source, "-an", "-map_metadata", "-1"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        cmd += ["-movflags", "+faststart", "-fflags", "+bitexact", "-f", "mp4", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        return out.read_bytes()


def _free_box(size: int) -> bytes:
    """An MP4 ``free`` box of exactly ``size`` bytes (header included)."""
    if size < BOX_HEADER or size >= 2**32:
        raise ValueError(f"a free box is {BOX_HEADER}..2**32-1 bytes, got {size}")
    return size.to_bytes(4, "big") + b"free" + bytes(size - BOX_HEADER)


def make_mp4(
    path_or_none: PathArg = None,
    *,
    seconds: float = 1.0,
    width: int = 320,
    height: int = 240,
    fps: int = 12,
    extra_bytes: int = 0,
) -> bytes:
    """Return a real H.264 yuv420p MP4 (+faststart); also write it to ``path_or_none`` if given.

    ``extra_bytes`` (0 or >= 8) appends a ``free`` box of exactly that size, so the file
    grows by that amount and still decodes. The default clip is about 8 KB.
    """
    data = _encode_mp4(float(seconds), width, height, fps)
    if extra_bytes:
        data += _free_box(extra_bytes)
    if path_or_none is not None:
        Path(path_or_none).write_bytes(data)
    return data


def mp4_of_size(
    total_bytes: int,
    path_or_none: PathArg = None,
    *,
    seconds: float = 1.0,
    width: int = 320,
    height: int = 240,
    fps: int = 12,
) -> bytes:
    """Return a valid MP4 of exactly ``total_bytes`` (e.g. one byte over an upload limit).

    The clip parameters are those of :func:`make_mp4`; a ``free`` box makes up the
    difference, so the target must exceed the bare clip by at least 8 bytes.
    """
    bare = _encode_mp4(float(seconds), width, height, fps)
    return make_mp4(
        path_or_none,
        seconds=seconds,
        width=width,
        height=height,
        fps=fps,
        extra_bytes=total_bytes - len(bare),
    )


@functools.lru_cache(maxsize=4)
def noisy_mp4(seconds: float, width: int, height: int, bitrate: int, fps: int = 30) -> bytes:
    """A ``testsrc`` clip under moving noise, with a sine tone, encoded at ``bitrate`` bit/s.

    Noise does not compress, so the file really is about ``bitrate * seconds / 8`` bytes
    of H.264 + AAC (+faststart): the input of shrink-to-fit tests, where padding would
    let a re-encode shrink it for free.
    """
    kbps = f"{bitrate // 1000}k"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "noisy.mp4"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        cmd += ["-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}"]
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        cmd += ["-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast"]
        cmd += ["-b:v", kbps, "-maxrate", kbps, "-bufsize", kbps, "-pix_fmt", "yuv420p"]
        cmd += ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        return out.read_bytes()


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg says about a file's first video stream (enough for assertions)."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    raw: str  # ffmpeg's full stderr, for failure messages


_STREAM = re.compile(
    r"Video: (?P<codec>\w+)[^,]*, (?P<pix>\w+)[^,]*,.*?(?P<w>\d{2,})x(?P<h>\d{2,})"
)


def probe_video(data: bytes) -> VideoInfo:
    """Describe a video by running ``ffmpeg -i`` and parsing its stderr (no ffprobe is bundled).

    Raises ``ValueError`` when ffmpeg finds no video stream, e.g. for an HTML error page
    saved as ``.mp4``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.bin"
        src.write_bytes(data)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(src)]
        # ffmpeg exits 1 ("no output file") after printing the stream info we want.
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    match = _STREAM.search(proc.stderr)
    if match is None:
        raise ValueError(f"no video stream found:\n{proc.stderr}")
    return VideoInfo(
        codec=match["codec"],
        pix_fmt=match["pix"],
        width=int(match["w"]),
        height=int(match["h"]),
        raw=proc.stderr,
    )


def _pattern(width: int, height: int) -> Image.Image:
    """An RGB picture with gradients and a Mandelbrot, so encoders see real structure.

    A blank image compresses to almost nothing and hides size-limit bugs; noise never
    compresses. This sits in between, like a photo or a drawing.
    """
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    fractal = Image.effect_mandelbrot((width, height), (-2.0, -1.25, 0.75, 1.25), 40)
    return Image.merge("RGB", (horizontal, vertical, fractal))


def make_image(
    fmt: ImageFormat,
    width: int,
    height: int,
    *,
    mode: str = "RGB",
    **kwargs: object,
) -> bytes:
    """Encode a patterned ``width`` x ``height`` image in ``fmt``.

    ``mode`` is any Pillow mode the format can store ("RGB", "RGBA" gets a gradient alpha,
    "L", "P", "CMYK" for JPEG...). ``kwargs`` go to ``Image.save`` (``quality=``,
    ``lossless=``, ``exif=``...).
    """
    image = _pattern(width, height)
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize((width, height)))
    elif mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()
