"""Generators for the image test corpus: every file is built in memory, no blobs."""

from __future__ import annotations

import io
import os
import struct
import zlib

from PIL import ExifTags, Image, ImageCms, ImageDraw


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


def png(
    width: int, height: int, mode: str = "L", color: float | tuple[float, ...] | str = 128
) -> bytes:
    return encode(Image.new(mode, (width, height), color), "PNG")


def jpeg(
    width: int,
    height: int,
    mode: str = "RGB",
    color: float | tuple[float, ...] | str = (200, 30, 30),
    **params: object,
) -> bytes:
    return encode(Image.new(mode, (width, height), color), "JPEG", **params)


def webp(width: int, height: int, **params: object) -> bytes:
    return encode(Image.new("RGB", (width, height), (10, 120, 200)), "WEBP", **params)


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    bands = len(mode)
    return Image.frombytes(mode, (width, height), os.urandom(width * height * bands))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG header declaring width x height 1-bit pixels, with a tiny IDAT.

    The IDAT holds only a few rows, so decoding it would fail as truncated: an
    inspector that answers "too many pixels" proves it never decoded the pixels.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = zlib.compress(row * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def bomb_webp(width: int = 16_000, height: int = 16_000) -> bytes:
    """A WebP whose VP8X header declares a huge canvas and holds no image data."""
    vp8x = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def text_file() -> bytes:
    """What a member might upload as ``cat.jpg``: plain text."""
    return b"This is not a picture of a cat, just a text file named cat.jpg.\n" * 20


def animated_gif(width: int = 400, height: int = 400, frames: int = 3) -> bytes:
    images = [Image.new("P", (width, height), i * 40) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def animated_webp(width: int = 400, height: int = 400, frames: int = 3) -> bytes:
    images = [Image.new("RGB", (width, height), (i * 60, 0, 0)) for i in range(frames)]
    return encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=100)


def apng(width: int = 400, height: int = 400, frames: int = 2) -> bytes:
    images = [Image.new("RGB", (width, height), (0, i * 90, 0)) for i in range(frames)]
    return encode(images[0], "PNG", save_all=True, append_images=images[1:], duration=100)


def cmyk_jpeg(width: int = 500, height: int = 400) -> bytes:
    """A pure-red CMYK JPEG (C=0, M=100%, Y=100%, K=0)."""
    return jpeg(width, height, mode="CMYK", color=(0, 255, 255, 0), quality=95)


def oriented_jpeg(stored: tuple[int, int], orientation: int) -> bytes:
    """Stored landscape-on-disk with an EXIF Orientation tag; left half red, right half blue."""
    im = Image.new("RGB", stored, (0, 0, 255))
    ImageDraw.Draw(im).rectangle((0, 0, stored[0] // 2 - 1, stored[1]), fill=(255, 0, 0))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(im, "JPEG", exif=exif, quality=95)


def padded_jpeg(total_bytes: int) -> bytes:
    """A valid 600x600 JPEG with zero bytes after its end marker, ``total_bytes`` long."""
    data = jpeg(600, 600)
    return data + b"\x00" * (total_bytes - len(data))


def png16(width: int = 400, height: int = 400) -> bytes:
    """16-bit greyscale: left half 65535, right half 32896 (0x8080)."""
    im = Image.new("I;16", (width, height), 32896)
    im.paste(65535, (0, 0, width // 2, height))
    return encode(im, "PNG")


def palette_png_with_transparency(width: int = 400, height: int = 400) -> bytes:
    """Palette image, index 0 transparent (top half), index 1 opaque green."""
    im = Image.new("P", (width, height), 1)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    im.paste(0, (0, 0, width, height // 2))
    return encode(im, "PNG", transparency=0)


def rgba_png(width: int = 400, height: int = 400, alpha: int = 0) -> bytes:
    """RGBA: top half has the given alpha, bottom half opaque blue."""
    im = Image.new("RGBA", (width, height), (0, 0, 255, 255))
    im.paste((255, 0, 0, alpha), (0, 0, width, height // 2))
    return encode(im, "PNG")


def gps_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A JPEG carrying EXIF with GPS coordinates, an ICC profile and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 3.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.new("RGB", (width, height), (90, 160, 60))
    return encode(im, "JPEG", exif=exif, icc_profile=icc, comment=b"taken at home", quality=90)
