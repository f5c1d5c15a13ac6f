"""Image checks and preparation (hailuo/media/images.py) against a generated corpus."""

from __future__ import annotations

import ast
import base64
import io
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, PngImagePlugin

from hailuo.media import images, preparing
from hailuo.media.images import CheckedImage, check_declared, check_dimensions, inspect
from hailuo.media.preparing import PreparedImage, prepare
from hailuo.model.capability import DEFAULT_RULES, ImageRules
from hailuo.model.errors import UserInputError
from providers.freepik import FREEPIK_RULES
from tests import image_corpus as corpus

JPEG_PNG = frozenset({"JPEG", "PNG"})
ALL = frozenset({"JPEG", "PNG", "WEBP"})
LIMIT = 20_000_000


def refusal(call: Callable[[], object]) -> tuple[str, dict[str, object]]:
    with pytest.raises(UserInputError) as info:
        call()
    return info.value.rule, dict(info.value.params)


def reopen(prepared: PreparedImage) -> Image.Image:
    im = Image.open(io.BytesIO(prepared.data))
    im.load()
    return im


# --- check_declared: Discord's metadata, before the download ------------------


def test_declared_metadata_that_passes() -> None:
    check_declared(content_type="image/png", size=19_999_999, width=401, height=1000)
    check_declared(content_type="IMAGE/JPEG; charset=binary", size=None, width=None, height=None)
    # GIF is still "an image": its format is judged from the bytes later.
    check_declared(content_type="image/gif", size=1, width=None, height=None)
    check_declared(content_type=None, size=None, width=1000, height=None)
    check_declared(content_type="", size=None, width=0, height=0)  # "unknown", not refused


@pytest.mark.parametrize(
    ("declared", "rule", "params"),
    [
        (
            {"content_type": "text/plain; charset=utf-8"},
            "image.declared_type",
            {"expected": "image/*", "actual": "text/plain"},
        ),
        (
            {"content_type": "video/mp4"},
            "image.declared_type",
            {"expected": "image/*", "actual": "video/mp4"},
        ),
        ({"size": 20_000_000}, "image.too_big", {"limit": LIMIT, "actual": 20_000_000}),
        ({"size": 21_000_000}, "image.too_big", {"limit": LIMIT, "actual": 21_000_000}),
        ({"width": 200, "height": 200}, "image.short_edge", {"minimum": 301, "actual": 200}),
        (
            {"width": 400, "height": 1000},
            "image.aspect",
            {"minimum": "2:5", "maximum": "5:2", "actual": "2:5", "width": 400, "height": 1000},
        ),
        (
            {"width": 10_000, "height": 5_000},
            "image.too_many_pixels",
            {"maximum": 40_000_000, "actual": 50_000_000, "width": 10_000, "height": 5_000},
        ),
    ],
)
def test_declared_metadata_refused(
    declared: dict[str, object], rule: str, params: dict[str, object]
) -> None:
    args: dict[str, object] = {"content_type": None, "size": None, "width": None, "height": None}
    args.update(declared)
    assert refusal(lambda: check_declared(**args)) == (rule, params)  # type: ignore[arg-type]


def test_declared_dimensions_pass_in_either_orientation() -> None:
    # Discord may report the stored size; with a landscape-only rule the stored
    # 1000x500 of an EXIF-portrait photo must not be judged before the download.
    landscape_only = replace(DEFAULT_RULES, aspect_min=(1, 1))
    check_declared(content_type=None, size=None, width=500, height=1000, rules=landscape_only)


# --- inspect: the bytes ------------------------------------------------------


BAD: list[tuple[str, Callable[[], bytes], str, dict[str, object]]] = [
    ("200x200", lambda: corpus.png(200, 200), "image.short_edge", {"minimum": 301, "actual": 200}),
    ("300x500", lambda: corpus.png(300, 500), "image.short_edge", {"minimum": 301, "actual": 300}),
    ("3000x1", lambda: corpus.png(3000, 1), "image.short_edge", {"minimum": 301, "actual": 1}),
    (
        "1:4",
        lambda: corpus.png(400, 1600),
        "image.aspect",
        {"minimum": "2:5", "maximum": "5:2", "actual": "1:4", "width": 400, "height": 1600},
    ),
    (
        "exactly 2:5",
        lambda: corpus.png(400, 1000),
        "image.aspect",
        {"minimum": "2:5", "maximum": "5:2", "actual": "2:5", "width": 400, "height": 1000},
    ),
    (
        "exactly 5:2",
        lambda: corpus.jpeg(1000, 400),
        "image.aspect",
        {"minimum": "2:5", "maximum": "5:2", "actual": "5:2", "width": 1000, "height": 400},
    ),
    (
        "bomb 30000x30000",
        corpus.bomb_png,
        "image.too_many_pixels",
        {"maximum": 40_000_000, "actual": 900_000_000, "width": 30_000, "height": 30_000},
    ),
    (
        "bomb in Pillow's warning zone",  # 100 MP: Image.open would warn here
        lambda: corpus.bomb_png(10_000, 10_000),
        "image.too_many_pixels",
        {"maximum": 40_000_000, "actual": 100_000_000, "width": 10_000, "height": 10_000},
    ),
    (
        "bomb below Pillow's limit",  # 45 MP: only our guard sees it
        lambda: corpus.bomb_png(9_000, 5_000),
        "image.too_many_pixels",
        {"maximum": 40_000_000, "actual": 45_000_000, "width": 9_000, "height": 5_000},
    ),
    (
        "WebP bomb",
        corpus.bomb_webp,
        "image.too_many_pixels",
        {"maximum": 40_000_000, "actual": 256_000_000, "width": 16_000, "height": 16_000},
    ),
    (
        "truncated PNG",
        lambda: corpus.truncated(corpus.encode(corpus.noise(600, 600), "PNG")),
        "image.corrupt",
        {"format": "PNG"},
    ),
    (
        "truncated JPEG",
        lambda: corpus.truncated(corpus.encode(corpus.noise(600, 600), "JPEG")),
        "image.corrupt",
        {"format": "JPEG"},
    ),
    ("PNG signature only", lambda: b"\x89PNG\r\n\x1a\n", "image.corrupt", {"format": "PNG"}),
    (
        "text named .jpg",
        corpus.text_file,
        "image.format",
        {"allowed": "JPEG, PNG, WEBP", "actual": "unknown"},
    ),
    (
        "empty file",
        lambda: b"",
        "image.format",
        {"allowed": "JPEG, PNG, WEBP", "actual": "unknown"},
    ),
    (
        "animated GIF",
        corpus.animated_gif,
        "image.format",
        {"allowed": "JPEG, PNG, WEBP", "actual": "GIF"},
    ),
    ("animated WebP", corpus.animated_webp, "image.animated", {"format": "WEBP", "frames": 3}),
    ("animated PNG", corpus.apng, "image.animated", {"format": "PNG", "frames": 2}),
    (
        "21 MB",
        lambda: corpus.padded_jpeg(21_000_000),
        "image.too_big",
        {"limit": LIMIT, "actual": 21_000_000},
    ),
    (
        "exactly 20,000,000 bytes",
        lambda: corpus.padded_jpeg(20_000_000),
        "image.too_big",
        {"limit": LIMIT, "actual": 20_000_000},
    ),
]


@pytest.mark.parametrize(("make", "rule", "params"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_images_map_to_their_rule(
    make: Callable[[], bytes], rule: str, params: dict[str, object]
) -> None:
    assert refusal(lambda: inspect(make())) == (rule, params)


def test_bombs_are_small_and_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    data = corpus.bomb_png()
    assert len(data) < 5_000

    def no_decoding(self: object) -> None:
        raise AssertionError("the pixels of a bomb were decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    rule, _ = refusal(lambda: inspect(data))
    assert rule == "image.too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is left alone


def test_webp_refused_for_freepik_by_content() -> None:
    assert refusal(lambda: inspect(corpus.webp(500, 500), FREEPIK_RULES)) == (
        "image.format",
        {"allowed": "JPEG, PNG", "actual": "WEBP"},
    )


@pytest.mark.parametrize(
    ("make", "size", "fmt", "mode"),
    [
        (lambda: corpus.png(401, 1000), (401, 1000), "PNG", "L"),
        (lambda: corpus.png(301, 301), (301, 301), "PNG", "L"),
        (lambda: corpus.jpeg(1000, 401), (1000, 401), "JPEG", "RGB"),
        (lambda: corpus.webp(640, 360), (640, 360), "WEBP", "RGB"),
        (corpus.cmyk_jpeg, (500, 400), "JPEG", "CMYK"),
        (corpus.png16, (400, 400), "PNG", "I;16"),
        (corpus.palette_png_with_transparency, (400, 400), "PNG", "P"),
        (corpus.rgba_png, (400, 400), "PNG", "RGBA"),
        (corpus.gps_jpeg, (640, 480), "JPEG", "RGB"),
        (lambda: corpus.padded_jpeg(19_999_999), (600, 600), "JPEG", "RGB"),
    ],
)
def test_good_images_pass(
    make: Callable[[], bytes], size: tuple[int, int], fmt: str, mode: str
) -> None:
    data = make()
    checked = inspect(data)
    assert (checked.width, checked.height, checked.format, checked.mode) == (*size, fmt, mode)
    assert checked.data is data  # the verified bytes themselves, not a copy
    assert "data" not in repr(checked)


def test_exif_orientation_is_applied_before_the_geometry_checks() -> None:
    # Stored 1000x500 landscape on disk, EXIF orientation 6: displayed 500x1000.
    data = corpus.oriented_jpeg((1000, 500), orientation=6)
    checked = inspect(data)
    assert (checked.width, checked.height) == (500, 1000)
    # The default rules are symmetric under a 90° turn, so only an asymmetric
    # rule can show the verdict changing: landscape-only refuses the displayed
    # portrait although the pixels on disk are landscape.
    landscape_only = replace(DEFAULT_RULES, aspect_min=(1, 1))
    assert refusal(lambda: inspect(data, landscape_only)) == (
        "image.aspect",
        {"minimum": "1:1", "maximum": "5:2", "actual": "1:2", "width": 500, "height": 1000},
    )
    unrotated = inspect(corpus.oriented_jpeg((1000, 500), orientation=1), landscape_only)
    assert (unrotated.width, unrotated.height) == (1000, 500)


def test_orientation_is_baked_into_the_prepared_pixels() -> None:
    checked = inspect(corpus.oriented_jpeg((1000, 500), orientation=6))
    out = reopen(prepare(checked, accepted_formats=JPEG_PNG, max_bytes=LIMIT))
    assert out.size == (500, 1000)
    assert not out.getexif()  # no orientation tag left to apply twice
    # Orientation 6 = rotate 90° clockwise: the red left half ends on top.
    top, bottom = out.getpixel((250, 100)), out.getpixel((250, 900))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


# --- prepare: what leaves the bot ---------------------------------------------

GOOD: dict[str, Callable[[], bytes]] = {
    "png": lambda: corpus.png(401, 1000),
    "jpeg": lambda: corpus.jpeg(1000, 401),
    "webp": lambda: corpus.webp(640, 360),
    "cmyk": corpus.cmyk_jpeg,
    "png16": corpus.png16,
    "palette+tRNS": corpus.palette_png_with_transparency,
    "rgba": corpus.rgba_png,
    "gps": corpus.gps_jpeg,
    "rotated": lambda: corpus.oriented_jpeg((1000, 500), orientation=8),
    "padded": lambda: corpus.padded_jpeg(3_000_000),
}


@pytest.mark.parametrize("accepted", [JPEG_PNG, ALL, frozenset({"JPEG"}), frozenset({"PNG"})])
@pytest.mark.parametrize("name", sorted(GOOD))
def test_prepared_output_is_clean_jpeg_or_png_that_fits(
    name: str, accepted: frozenset[str]
) -> None:
    checked = inspect(GOOD[name]())
    prepared = prepare(checked, accepted_formats=accepted, max_bytes=LIMIT)
    out = reopen(prepared)
    assert out.format in accepted & {"JPEG", "PNG"}
    assert prepared.mime == Image.MIME[out.format]
    assert out.size == (prepared.width, prepared.height) == (checked.width, checked.height)
    assert out.mode in ("L", "RGB", "RGBA")
    assert len(prepared.data) < LIMIT
    assert not out.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp", "transparency"} & out.info.keys()


def test_gps_exif_never_leaves_the_bot() -> None:
    data = corpus.gps_jpeg()
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really has GPS
    assert b"Exif\x00\x00" in data and b"taken at home" in data
    prepared = prepare(inspect(data), accepted_formats=ALL, max_bytes=LIMIT)
    assert prepared.mime == "image/jpeg"
    assert b"Exif" not in prepared.data
    assert b"taken at home" not in prepared.data
    assert b"ICC_PROFILE" not in prepared.data
    assert "exif" not in reopen(prepared).info


def test_webp_for_freepik_comes_out_jpeg() -> None:
    checked = inspect(corpus.webp(640, 360))
    for accepted in (FREEPIK_RULES.formats, ALL):
        prepared = prepare(checked, accepted_formats=accepted, max_bytes=LIMIT)
        assert prepared.mime == "image/jpeg"
        assert reopen(prepared).format == "JPEG"


def test_cmyk_becomes_rgb_with_the_same_colour() -> None:
    prepared = prepare(inspect(corpus.cmyk_jpeg()), accepted_formats=JPEG_PNG, max_bytes=LIMIT)
    out = reopen(prepared)
    assert out.mode == "RGB"
    r, g, b = out.getpixel((10, 10))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    prepared = prepare(inspect(corpus.png16()), accepted_formats=JPEG_PNG, max_bytes=LIMIT)
    out = reopen(prepared)
    assert (prepared.mime, out.mode) == ("image/png", "L")
    assert out.getpixel((10, 10)) == 255
    assert out.getpixel((390, 10)) == 128  # 0x8080 / 257, where clipping would give 255


def test_palette_transparency_kept_as_png_or_flattened_on_white() -> None:
    checked = inspect(corpus.palette_png_with_transparency())
    as_png = reopen(prepare(checked, accepted_formats=JPEG_PNG, max_bytes=LIMIT))
    assert as_png.mode == "RGBA"
    assert as_png.getpixel((10, 10)) == (255, 0, 0, 0)  # transparent, colour of index 0
    assert as_png.getpixel((10, 390)) == (0, 255, 0, 255)
    as_jpeg = reopen(prepare(checked, accepted_formats=frozenset({"JPEG"}), max_bytes=LIMIT))
    assert as_jpeg.mode == "RGB"
    top = as_jpeg.getpixel((10, 10))
    assert isinstance(top, tuple) and min(top) > 245  # white, not the hidden red


def test_rgba_alpha_kept_when_used_dropped_when_opaque() -> None:
    translucent = prepare(inspect(corpus.rgba_png(alpha=0)), accepted_formats=ALL, max_bytes=LIMIT)
    assert (translucent.mime, reopen(translucent).mode) == ("image/png", "RGBA")
    opaque = prepare(inspect(corpus.rgba_png(alpha=255)), accepted_formats=ALL, max_bytes=LIMIT)
    assert (opaque.mime, reopen(opaque).mode) == ("image/png", "RGB")


def test_alpha_png_too_big_falls_back_to_jpeg() -> None:
    im = corpus.noise(700, 700, "RGBA")
    checked = inspect(corpus.encode(im, "PNG"))
    png_size = len(prepare(checked, accepted_formats=JPEG_PNG, max_bytes=LIMIT).data)
    prepared = prepare(checked, accepted_formats=JPEG_PNG, max_bytes=png_size)
    assert prepared.mime == "image/jpeg"
    assert len(prepared.data) < png_size


def test_max_bytes_is_exclusive_and_steps_down_the_quality() -> None:
    checked = inspect(corpus.encode(corpus.noise(600, 600), "JPEG", quality=95))
    first = prepare(checked, accepted_formats=JPEG_PNG, max_bytes=LIMIT)
    size = len(first.data)
    assert prepare(checked, accepted_formats=JPEG_PNG, max_bytes=size + 1).data == first.data
    smaller = prepare(checked, accepted_formats=JPEG_PNG, max_bytes=size)
    assert smaller.mime == "image/jpeg" and len(smaller.data) < size


@pytest.mark.parametrize("accepted", [JPEG_PNG, frozenset({"PNG"})])
def test_nothing_fits_after_prepare(accepted: frozenset[str]) -> None:
    checked = inspect(corpus.encode(corpus.noise(600, 600), "PNG"))
    rule, params = refusal(lambda: prepare(checked, accepted_formats=accepted, max_bytes=10_000))
    assert rule == "image.too_large_after_prepare"
    assert params["limit"] == 10_000
    assert isinstance(params["actual"], int) and params["actual"] >= 10_000


def test_prepare_needs_jpeg_or_png() -> None:
    checked = inspect(corpus.webp(640, 360))
    with pytest.raises(ValueError, match="JPEG or PNG"):
        prepare(checked, accepted_formats=frozenset({"WEBP"}), max_bytes=LIMIT)


def test_data_url_round_trips() -> None:
    prepared = prepare(inspect(corpus.jpeg(640, 480)), accepted_formats=ALL, max_bytes=LIMIT)
    url = prepared.data_url()
    head, _, payload = url.partition(",")
    assert head == "data:image/jpeg;base64"
    assert base64.b64decode(payload, validate=True) == prepared.data
    assert "data=" not in repr(prepared)


async def test_async_wrappers_run_in_a_thread() -> None:
    checked = await preparing.inspect_async(corpus.png(640, 480))
    assert isinstance(checked, CheckedImage)
    prepared = await preparing.prepare_async(checked, accepted_formats=ALL, max_bytes=LIMIT)
    assert prepared.mime == "image/png"
    with pytest.raises(UserInputError):
        await preparing.inspect_async(corpus.text_file())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"formats": frozenset({"GIF"})},
        {"formats": frozenset()},
        {"max_bytes": 0},
        {"aspect_min": (5, 2), "aspect_max": (2, 5)},
    ],
)
def test_rules_refuse_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ImageRules(**kwargs)  # type: ignore[arg-type]


def test_default_rules_hold_the_documented_numbers() -> None:
    assert (
        ImageRules(
            formats=frozenset({"JPEG", "PNG", "WEBP"}),
            max_bytes=20_000_000,
            min_short_edge=301,
            aspect_min=(2, 5),
            aspect_max=(5, 2),
            max_pixels=40_000_000,
        )
        == DEFAULT_RULES
    )
    assert FREEPIK_RULES.formats == frozenset({"JPEG", "PNG"})


@pytest.mark.parametrize("module", [images, preparing], ids=lambda m: m.__name__)
def test_images_module_stays_free_of_discord_and_aiohttp(module: object) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"discord", "aiohttp"}


# --- properties ----------------------------------------------------------------


def oracle_accepts(width: int, height: int) -> bool:
    """The documented rule, written independently with exact fractions."""
    ratio = Fraction(width, height)
    return min(width, height) > 300 and Fraction(2, 5) < ratio < Fraction(5, 2)


def verdict(call: Callable[[], object]) -> bool:
    try:
        call()
    except UserInputError as error:
        assert error.rule in ("image.short_edge", "image.aspect")
        return False
    return True


near_boundaries = st.one_of(
    st.integers(1, 20_000),
    st.sampled_from([1, 2, 5, 299, 300, 301, 302, 400, 401, 1000, 1001, 1002, 2500, 2501]),
)


@settings(max_examples=500, database=None, deadline=None)
@given(width=near_boundaries, height=near_boundaries, scale=st.integers(1, 40))
def test_dimension_verdict_equals_the_integer_rule(width: int, height: int, scale: int) -> None:
    expected = oracle_accepts(width, height)
    assert verdict(lambda: check_dimensions(width=width, height=height)) == expected
    assert verdict(lambda: check_dimensions(width=height, height=width)) == expected
    # Ratios exactly on a bound at any scale: 2k:5k and 5k:2k are always refused.
    assert not verdict(lambda: check_dimensions(width=2 * 301 * scale, height=5 * 301 * scale))
    assert not verdict(lambda: check_dimensions(width=5 * 301 * scale, height=2 * 301 * scale))


@settings(
    max_examples=25,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    width=st.one_of(st.integers(1, 1300), st.sampled_from([300, 301, 400, 401, 1000])),
    height=st.one_of(st.integers(1, 1300), st.sampled_from([300, 301, 400, 401, 1000])),
)
def test_inspect_verdict_equals_the_integer_rule(width: int, height: int) -> None:
    data = corpus.png(width, height, mode="1", color=0)
    assert verdict(lambda: inspect(data)) == oracle_accepts(width, height)
