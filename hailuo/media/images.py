"""Checks and preparation of the image a member gives to ``/hailuo animate``.

Three steps, all pure CPU work (the bot runs them on :class:`ImageWorkers`, threads
of their own; the ``*_async`` wrappers use ``asyncio.to_thread`` for one-shot tools):

1. :func:`check_declared` - Discord's attachment metadata, before any download.
2. :func:`inspect` - the downloaded bytes: size, format sniffed from the content
   (never the filename or the declared type), a pixel-count guard read from the
   header before any pixel is decoded, animation, a full decode (corrupt or
   truncated files), EXIF orientation, then short edge and aspect ratio.
3. ``hailuo.media.preparing.prepare`` - what leaves the bot: re-encoded from pixels only (no EXIF,
   GPS, XMP, ICC, comments or trailing bytes), orientation baked in, colours
   converted to sRGB, JPEG or PNG only, smaller than the provider's limit.

The rules are the strictest reading of every provider's page (shared/providers.md
§1, §2, seeds 000-004): JPEG/PNG/WebP (Freepik: no WebP, handled by ``prepare``),
smaller than 20,000,000 bytes, short edge > 300 px, aspect ratio strictly between
2:5 and 5:2, compared in integers. Both geometric rules are symmetric under a 90°
turn, so EXIF orientation never changes their verdict with the default rules; it
changes the reported width/height (portrait or landscape) and the pixels sent.

Decision: providers get a base64 ``data:`` URL of :class:`PreparedImage`, never
the Discord CDN URL. Discord attachment URLs are signed and expire, and a job
may be submitted hours later (approval queue, restart, failover to the next
provider); the CDN file is the member's original, with its EXIF/GPS, while the
data URL carries exactly the bytes we checked and cleaned. MiniMax (seed 001),
Freepik (000), Novita (003) and gpt.ge (004) document data URLs. odkkk (seed 002,
a white-label of EvoLink) documents only ``image_urls``: "Reference image URLs",
``format: uri``, examples ``https://...``; base64 is not mentioned. The bot sends
the data URL there too (RFC 2397 ``data:`` is a URI, so the schema holds): the
alternative, hosting the image ourselves, needs a public server the bot may not
have. If odkkk refuses it (400 / ``image_processing_error``) the adapter fails
over to the next provider; it must never fall back to the Discord URL. EvoLink
documents a base64 upload endpoint returning a hosted URL (72 h); odkkk's
equivalent is unknown, so that stays a later option for the odkkk adapter.

Every refusal is ``UserInputError(code, **params)`` with the rule's own numbers;
codes and params (``limit`` is exclusive, ``minimum``/``maximum`` inclusive,
except ``image.aspect`` whose bounds are exclusive ratios ``"w:h"``)::

    image.declared_type            expected="image/*", actual=<declared type>
    image.too_big                  limit=20_000_000, actual=<bytes>
    image.format                   allowed="JPEG, PNG, WEBP", actual=<sniffed, e.g. "GIF">
    image.too_many_pixels          maximum=40_000_000, actual=<w*h>, width, height
    image.animated                 format, frames
    image.corrupt                  format
    image.short_edge               minimum=301, actual=<short edge>
    image.aspect                   minimum="2:5", maximum="5:2", actual=<reduced w:h>,
                                   width, height
    image.too_large_after_prepare  limit=<max_bytes>, actual=<smallest encoding tried>

Pillow's own bomb guard (~89 MP warns, ~179 MP raises, from a process-wide
global) is bypassed on purpose: the format plugin is constructed directly, so
``Image.open``'s check never runs and no ``DecompressionBombWarning`` can escape
from a worker thread (``warnings.catch_warnings`` is not thread-safe). Ours is
lower (40 MP) and runs on the header; WebP sizes are read from the RIFF header
before libwebp allocates a canvas. ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay
False in the process, or truncated files would decode silently.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Final

from PIL import (
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    WebPImagePlugin,
)

from hailuo.model.capability import DEFAULT_RULES, READABLE_FORMATS, ImageRules
from hailuo.model.errors import UserInputError

__all__ = [
    "CheckedImage",
    "check_declared",
    "check_dimensions",
    "decode",
    "inspect",
    "open_checked",
    "sniff_format",
]

_READABLE: Final = READABLE_FORMATS
# Pillow's errors for a broken file: plugins raise SyntaxError, decoders OSError.
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
)
_BOMB_ERRORS: Final = (Image.DecompressionBombError, Image.DecompressionBombWarning)


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """An image that passed :func:`inspect`.

    It keeps the verified original bytes, not decoded pixels: they are compressed
    (< 20 MB, usually far less) while a decoded 40 MP RGBA frame is 160 MB, and a
    job may wait hours for approval or failover. :func:`prepare` decodes them again
    the same way. Build it only through :func:`inspect`.
    """

    width: int  # after EXIF orientation
    height: int
    format: str  # sniffed from the content: "JPEG", "PNG" or "WEBP"
    mode: str  # Pillow mode of the decoded frame, e.g. "RGB", "CMYK", "P", "I;16"
    data: bytes = field(repr=False)


def _check_bytes(size: int, rules: ImageRules) -> None:
    if size >= rules.max_bytes:
        raise UserInputError("image.too_big", limit=rules.max_bytes, actual=size)


def _check_pixels(width: int, height: int, rules: ImageRules) -> None:
    if width * height > rules.max_pixels:
        raise UserInputError(
            "image.too_many_pixels",
            maximum=rules.max_pixels,
            actual=width * height,
            width=width,
            height=height,
        )


def check_dimensions(*, width: int, height: int, rules: ImageRules = DEFAULT_RULES) -> None:
    """Short edge, then aspect ratio, in integers; ``width``/``height`` as displayed."""
    short = min(width, height)
    if short < rules.min_short_edge:
        raise UserInputError("image.short_edge", minimum=rules.min_short_edge, actual=short)
    (a, b), (c, d) = rules.aspect_min, rules.aspect_max
    if not (width * b > a * height and width * d < c * height):
        divisor = math.gcd(width, height) or 1
        raise UserInputError(
            "image.aspect",
            minimum=f"{a}:{b}",
            maximum=f"{c}:{d}",
            actual=f"{width // divisor}:{height // divisor}",
            width=width,
            height=height,
        )


def check_declared(
    *,
    content_type: str | None,
    size: int | None,
    width: int | None,
    height: int | None,
    rules: ImageRules = DEFAULT_RULES,
) -> None:
    """The cheap pass on Discord's attachment metadata; omitted values are skipped.

    The declared type only has to be some ``image/*``: the format itself is judged
    from the bytes by :func:`inspect`. Discord may report the stored or the
    displayed size, so the dimensions pass if either orientation does.
    """
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if not media.startswith("image/"):
            raise UserInputError("image.declared_type", expected="image/*", actual=media[:100])
    if size is not None:
        _check_bytes(size, rules)
    if width is not None and height is not None and width > 0 and height > 0:
        _check_pixels(width, height, rules)
        try:
            check_dimensions(width=width, height=height, rules=rules)
        except UserInputError as as_declared:
            try:
                check_dimensions(width=height, height=width, rules=rules)
            except UserInputError:
                raise as_declared from None


# --- reading the bytes -----------------------------------------------------

_SIGNATURES: Final = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"%PDF", "PDF"),
)


def sniff_format(data: bytes) -> str:
    """The format named by the magic bytes: "JPEG", "PNG", "WEBP", ... or "unknown"."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for offset, magic, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    return "unknown"


def _webp_header_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from a WebP's first 30 bytes (VP8, VP8L or VP8X chunk)."""
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a" and len(data) >= 30:
        w = int.from_bytes(data[26:28], "little") & 0x3FFF
        h = int.from_bytes(data[28:30], "little") & 0x3FFF
        return w, h
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


_PLUGINS: Final[dict[str, Callable[[IO[bytes]], ImageFile.ImageFile]]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}


def _open_header(data: bytes, fmt: str, rules: ImageRules) -> ImageFile.ImageFile:
    """Parse the header only (no pixels), refusing bombs before anything is allocated."""
    if fmt == "WEBP":  # libwebp allocates its canvas when the file is opened
        size = _webp_header_size(data)
        if size is None:
            raise UserInputError("image.corrupt", format=fmt)
        _check_pixels(*size, rules)
    try:
        im = _PLUGINS[fmt](io.BytesIO(data))
    except _BOMB_ERRORS:  # unreachable unless Pillow adds checks: ours run first
        raise UserInputError(
            "image.too_many_pixels", maximum=rules.max_pixels, actual="unknown"
        ) from None
    except _DECODE_ERRORS:
        raise UserInputError("image.corrupt", format=fmt) from None
    try:
        _check_pixels(*im.size, rules)
    except UserInputError:
        im.close()
        raise
    return im


def decode(im: ImageFile.ImageFile, fmt: str) -> None:
    """Decode the first frame and bake EXIF orientation into it, in place."""
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
    except _DECODE_ERRORS:
        raise UserInputError("image.corrupt", format=fmt) from None


def inspect(data: bytes, rules: ImageRules = DEFAULT_RULES) -> CheckedImage:
    """Check downloaded bytes against every rule; raise ``UserInputError`` on the first broken."""
    _check_bytes(len(data), rules)
    fmt = sniff_format(data)
    if fmt not in rules.formats:
        raise UserInputError("image.format", allowed=", ".join(sorted(rules.formats)), actual=fmt)
    with _open_header(data, fmt, rules) as im:
        if getattr(im, "is_animated", False):
            raise UserInputError("image.animated", format=fmt, frames=getattr(im, "n_frames", 2))
        mode = im.mode
        decode(im, fmt)
        width, height = im.size
    check_dimensions(width=width, height=height, rules=rules)
    return CheckedImage(width=width, height=height, format=fmt, mode=mode, data=data)


def open_checked(checked: CheckedImage) -> ImageFile.ImageFile:
    """A checked image's header, opened the way :func:`inspect` opened it (for ``prepare``)."""
    return _PLUGINS[checked.format](io.BytesIO(checked.data))
