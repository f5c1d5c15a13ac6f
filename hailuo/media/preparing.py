"""What leaves the bot: a checked image re-encoded for a provider, and the image threads.

Step 3 of ``hailuo.media.images`` (which holds the checks, steps 1 and 2, and the
decision to send data URLs): re-encoded from pixels only (no EXIF, GPS, XMP, ICC,
comments or trailing bytes), orientation baked in, colours converted to sRGB, JPEG or
PNG only, smaller than the provider's limit. ``ImageWorkers`` runs checks and
preparation on threads of their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Final

from PIL import Image, ImageCms

from hailuo.media.images import CheckedImage, decode, inspect, open_checked
from hailuo.model.capability import DEFAULT_RULES, ImageRules
from hailuo.model.errors import UserInputError

_MIME: Final = {"JPEG": "image/jpeg", "PNG": "image/png"}
_JPEG_QUALITIES: Final = (92, 85, 75)


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """The bytes sent to a provider: clean JPEG or PNG, orientation baked in."""

    data: bytes = field(repr=False)
    mime: str
    width: int
    height: int

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


# --- the rules -------------------------------------------------------------


# --- preparing for a provider ----------------------------------------------


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(im: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile so the output needs none (plain sRGB)."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK"):
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(im, source, _srgb(), outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im  # a broken or mismatched profile: fall back to a plain conversion
    return converted if converted is not None else im


def _scale_16_to_8(value: Image.ImagePointTransform) -> Image.ImagePointTransform:
    return value / 257


def _normalise(im: Image.Image) -> Image.Image:
    """Any decoded mode -> "L", "RGB" or "RGBA" (alpha kept only where it is used)."""
    im = _to_srgb(im)
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit: scale, don't clip
        im.info.pop("transparency", None)
        im = im.point(_scale_16_to_8).convert("L")
    if im.has_transparency_data:  # RGBA, LA, PA, P or L/RGB with tRNS
        im = im.convert("RGBA")
        alpha_min, _ = im.getchannel("A").getextrema()
        if alpha_min == 255:
            im = im.convert("RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # CMYK, P, YCbCr, LAB, ...
    im.info = {}  # nothing of the original's metadata may reach an encoder
    return im


def _flatten(im: Image.Image) -> Image.Image:
    if im.mode != "RGBA":
        return im
    white = Image.new("RGB", im.size, (255, 255, 255))
    white.paste(im, mask=im.getchannel("A"))
    return white


def _encodings(
    im: Image.Image, source_format: str, accepted: frozenset[str]
) -> Iterator[tuple[str, bytes]]:
    """Candidate encodings, best first: lossless PNG for alpha or PNG sources, then JPEG."""
    lossless_first = im.mode == "RGBA" or source_format == "PNG"
    if "PNG" in accepted and lossless_first:
        yield "PNG", _save(im, "PNG")
    if "JPEG" in accepted:
        flat = _flatten(im)
        for quality in _JPEG_QUALITIES:
            yield "JPEG", _save(flat, "JPEG", quality=quality, optimize=True)
    if "PNG" in accepted and not lossless_first:
        yield "PNG", _save(im, "PNG")


def _save(im: Image.Image, fmt: str, **params: int | bool) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


def prepare(
    checked: CheckedImage, *, accepted_formats: frozenset[str], max_bytes: int
) -> PreparedImage:
    """Re-encode a checked image for one provider; the result is smaller than ``max_bytes``.

    Output is always JPEG or PNG (whichever of them ``accepted_formats`` allows),
    even for a WebP input a provider would accept: one code path, no metadata.
    ``max_bytes`` is exclusive, like ``ImageRules.max_bytes``; remember that a
    data URL is 4/3 the size of the bytes if the provider limits the request body.
    """
    accepted = frozenset(fmt for fmt in accepted_formats if fmt in _MIME)
    if not accepted:
        raise ValueError("accepted_formats must include JPEG or PNG")
    with open_checked(checked) as source:
        decode(source, checked.format)
        im = _normalise(source)
        smallest: int | None = None
        for fmt, data in _encodings(im, checked.format, accepted):
            if len(data) < max_bytes:
                return PreparedImage(data=data, mime=_MIME[fmt], width=im.width, height=im.height)
            smallest = len(data) if smallest is None else min(smallest, len(data))
    raise UserInputError("image.too_large_after_prepare", limit=max_bytes, actual=smallest)


async def inspect_async(data: bytes, rules: ImageRules = DEFAULT_RULES) -> CheckedImage:
    """:func:`inspect` in a worker thread, so decoding never blocks the event loop."""
    return await asyncio.to_thread(inspect, data, rules)


async def prepare_async(
    checked: CheckedImage, *, accepted_formats: frozenset[str], max_bytes: int
) -> PreparedImage:
    """:func:`prepare` in a worker thread."""
    return await asyncio.to_thread(
        prepare, checked, accepted_formats=accepted_formats, max_bytes=max_bytes
    )


class ImageWorkers:
    """Image decoding and encoding on a small pool of threads of their own, a few at a time.

    Not the loop's default executor: aiohttp's DNS resolver (``getaddrinfo``)
    runs there, and a look-up once waited 2.9 s behind six image decodes. The
    semaphore bounds how many requests' images are being fetched and checked at
    once (each holds up to two images of up to 20 MB, and their decoded frames),
    so a burst queues instead of growing memory; ``threads`` bounds the CPU.
    """

    def __init__(self, *, threads: int = 2, concurrent: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hailuo-image")
        self._slots = asyncio.Semaphore(concurrent)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Held while one request's images are fetched and checked."""
        async with self._slots:
            yield

    async def inspect(self, data: bytes, rules: ImageRules = DEFAULT_RULES) -> CheckedImage:
        """:func:`inspect` on the image threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, inspect, data, rules)

    async def prepare(
        self, checked: CheckedImage, *, accepted_formats: frozenset[str], max_bytes: int
    ) -> PreparedImage:
        """:func:`prepare` on the image threads."""
        loop = asyncio.get_running_loop()
        work = partial(prepare, checked, accepted_formats=accepted_formats, max_bytes=max_bytes)
        return await loop.run_in_executor(self._executor, work)

    def close(self) -> None:
        """Stop the threads; work not yet started is dropped (the bot is closing)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
