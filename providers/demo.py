"""The ``demo`` provider: a short captioned MP4 rendered on this machine, no key, no money.

It implements the same ``Provider`` protocol as the five real adapters, so the
whole job's life (queue, submit, poll, download, post, settle) runs unchanged.
``submit`` starts a render and returns its id; ``query`` reports the render's
progress; ``result_url`` points at the bot's own HTTP server, which serves the
file at ``/demo/{id}.mp4`` (``mount`` adds that route), so the ordinary
Downloader fetches it like any provider's file.

The picture: the first frame when the job has one, else a gradient coloured
from the prompt, slowly zoomed (ffmpeg ``zoompan``), under an overlay drawn
with Pillow: a large "DEMO" badge and the prompt as a caption. The bundled
ffmpeg has ``drawtext``, but that needs a font file on disk that a slim image
may lack, and its text escaping is a trap; Pillow ships a font and takes any
text as it is. ffmpeg runs as a subprocess (``asyncio.create_subprocess_exec``)
and the Pillow work in a thread, so the event loop never waits on either.
Renders are 2 s, 384 px on the long side, H.264 yuv420p with faststart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import logging
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw, ImageFont, ImageOps

from hailuo.model.camera import Spelling
from hailuo.model.capability import (
    ALL_MODES,
    BOTH_OPTIONS,
    DEFAULT_RULES,
    HOUR,
    Offer,
    ProviderCapability,
    WireNames,
    wire_values,
)
from hailuo.model.errors import ProviderErrorKind
from hailuo.model.provider import Phase, PreparedInput, SubmitReceipt, TaskState, failed
from hailuo.model.spec import MODEL_RULES, RESOLUTIONS

log = logging.getLogger(__name__)

NAME = "demo"

#: What this provider accepts and how it spells a request, declared once here and read by the body
#: builder below; ``providers.registry`` collects it. Our own server renders and keeps the file;
#: it accepts everything the model rules allow.
CAPABILITY = ProviderCapability(
    name=NAME,
    label="demo",
    models=frozenset(MODEL_RULES),
    modes=ALL_MODES,
    resolutions=MappingProxyType({r: Offer(frozenset({6, 10})) for r in RESOLUTIONS}),
    options=BOTH_OPTIONS,
    images=DEFAULT_RULES,
    spelling=WireNames(
        camera=Spelling.ENGLISH,
        model="model",
        resolution="resolution",
        resolution_values=wire_values(*RESOLUTIONS),
        duration="duration",
        prompt="prompt",
        first_frame="first_frame_image",
        last_frame="last_frame_image",
        prompt_optimizer="prompt_optimizer",
        fast_pretreatment="fast_pretreatment",
        callback="callback_url",
        image_encoding="data_url",
        required=frozenset({"model"}),
    ),
    result_lifetime=24 * HOUR,
    # Asked of this bot's own renderer: no provider's limit to keep.
    status_per_second=float("inf"),
    # Rendered here, billed by nobody.
    prices=MappingProxyType(
        {(m, r, d): 0 for m in MODEL_RULES for r in RESOLUTIONS for d in (6, 10)}
    ),
)
LONG_SIDE = 384
_FILE_NAME = re.compile(r"^([0-9a-f]{16})\.mp4$")
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def ffmpeg_path() -> str:
    """The ffmpeg binary shipped inside the imageio-ffmpeg wheel (no system ffmpeg needed)."""
    import imageio_ffmpeg  # a runtime dependency only the demo needs

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass
class _Render:
    task: asyncio.Task[None] | None = None
    frames_done: int = 0
    frames: int = 1
    error: str | None = None
    done: bool = False


class DemoProvider:
    name = NAME

    def __init__(
        self,
        *,
        directory: Path,
        base_url: str | Callable[[], str],
        ffmpeg: str | None = None,
        seconds: float = 2.0,
        fps: int = 12,
        concurrency: int = 2,
        keep: int = 50,
        timeout: float = 120.0,
    ) -> None:
        self.directory = directory
        self._base_url = base_url
        self._ffmpeg = ffmpeg
        self.seconds = seconds
        self.fps = fps
        self.keep = keep
        self.timeout = timeout
        self._renders: dict[str, _Render] = {}
        self._slots = asyncio.Semaphore(concurrency)

    # -- the Provider protocol ----------------------------------------------------------

    async def submit(self, job: PreparedInput) -> SubmitReceipt:
        task_id = secrets.token_hex(8)
        render = _Render(frames=max(1, round(self.seconds * self.fps)))
        self._renders[task_id] = render
        render.task = asyncio.create_task(self._render(task_id, job, render), name="demo-render")
        log.info("demo render %s started", task_id)
        return SubmitReceipt(task_id=task_id)

    async def query(self, task_id: str, meta: dict[str, Any]) -> TaskState:
        render = self._renders.get(task_id)
        if render is None:
            if _FILE_NAME.match(f"{task_id}.mp4") and self.path(task_id).is_file():
                return TaskState(phase=Phase.SUCCEEDED, locator=task_id, raw_status="done")
            # Renders live in this process: one started before a restart is gone.
            return failed(ProviderErrorKind.UNAVAILABLE, NAME, None, "render lost in a restart")
        if render.error is not None:
            return failed(ProviderErrorKind.UNAVAILABLE, NAME, None, render.error)
        if render.done:
            return TaskState(phase=Phase.SUCCEEDED, locator=task_id, raw_status="done")
        progress = min(99, render.frames_done * 100 // render.frames)
        return TaskState(phase=Phase.RUNNING, progress=progress, raw_status="rendering")

    async def result_url(self, locator: str, meta: dict[str, Any]) -> str:
        base = self._base_url() if callable(self._base_url) else self._base_url
        return f"{base.rstrip('/')}/demo/{locator}.mp4"

    def serve_from(self, base_url: str) -> None:
        """Where the files are served, once known (an ephemeral port is known after binding)."""
        self._base_url = base_url

    # -- serving and housekeeping -------------------------------------------------------

    def path(self, task_id: str) -> Path:
        return self.directory / f"{task_id}.mp4"

    def mount(self, app: web.Application) -> None:
        """Serve the rendered files from the bot's own HTTP server at ``/demo/{id}.mp4``."""
        app.router.add_get("/demo/{name}", self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        match = _FILE_NAME.match(request.match_info["name"])
        path = self.path(match.group(1)) if match else None
        if path is None or not path.is_file():
            raise web.HTTPNotFound
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    async def idle(self) -> None:
        """Wait until every render started so far has finished (tests and shutdown)."""
        tasks = [r.task for r in self._renders.values() if r.task is not None]
        await asyncio.gather(*tasks)

    async def close(self) -> None:
        for render in self._renders.values():
            if render.task is not None:
                render.task.cancel()
        await asyncio.gather(
            *(r.task for r in self._renders.values() if r.task is not None),
            return_exceptions=True,
        )

    # -- rendering ----------------------------------------------------------------------

    async def _render(self, task_id: str, job: PreparedInput, render: _Render) -> None:
        try:
            async with self._slots:
                await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=self.directory) as tmp:
                    work = Path(tmp)
                    size = await asyncio.to_thread(_write_inputs, job, work)
                    await asyncio.wait_for(self._encode(work, size, render), timeout=self.timeout)
                    await asyncio.to_thread((work / "out.mp4").replace, self.path(task_id))
            render.done = True
            log.info("demo render %s done", task_id)
            await asyncio.to_thread(self._prune)
        except asyncio.CancelledError:
            render.error = "render cancelled"
            raise
        except Exception as exc:  # reported through query() as a failed task
            log.exception("demo render %s failed", task_id)
            render.error = f"render failed: {type(exc).__name__}"

    async def _encode(self, work: Path, size: tuple[int, int], render: _Render) -> None:
        width, height = size
        frames = render.frames
        zoom = (
            f"zoompan=z='1+0.12*on/{frames}':d=1:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
            f":s={width}x{height}:fps={self.fps}"
        )
        graph = f"[0:v]{zoom}[bg];[bg][1:v]overlay=0:0,format=yuv420p[v]"
        cmd = [self._ffmpeg or ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-nostdin"]
        cmd += ["-y", "-loop", "1", "-framerate", str(self.fps), "-i", str(work / "bg.png")]
        cmd += ["-loop", "1", "-framerate", str(self.fps), "-i", str(work / "overlay.png")]
        cmd += ["-filter_complex", graph, "-map", "[v]", "-frames:v", str(frames), "-an"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        cmd += ["-movflags", "+faststart", "-map_metadata", "-1"]
        cmd += ["-progress", "pipe:1", "-nostats", "-f", "mp4", str(work / "out.mp4")]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.ensure_future(proc.stderr.read())
        try:
            async for line in proc.stdout:
                key, _, value = line.decode(errors="replace").strip().partition("=")
                if key == "frame" and value.isdigit():
                    render.frames_done = int(value)
            code = await proc.wait()
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        finally:
            stderr = await errors
        if code != 0:
            raise RuntimeError(f"ffmpeg exited {code}: {stderr.decode(errors='replace')[-300:]}")

    def _prune(self) -> None:
        """Keep the newest ``keep`` renders (delivered files are not needed after posting)."""
        files = sorted(self.directory.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)


# -- the picture (Pillow, in a worker thread) ---------------------------------------------


def _write_inputs(job: PreparedInput, work: Path) -> tuple[int, int]:
    """Write ``bg.png`` (twice the output size, for a smooth zoom) and ``overlay.png``."""
    first = _decode_image(job.first_frame)
    if first is not None:
        size = _even_fit(first.width, first.height)
        background = ImageOps.fit(first.convert("RGB"), (size[0] * 2, size[1] * 2))
    else:
        size = (LONG_SIDE, LONG_SIDE * 9 // 16)
        background = _gradient(job.spec.prompt, (size[0] * 2, size[1] * 2))
    background.save(work / "bg.png")
    overlay(job.spec.prompt, size).save(work / "overlay.png")
    return size


def overlay(prompt: str, size: tuple[int, int]) -> Image.Image:
    """The transparent layer over every frame: a DEMO badge and the prompt as a caption."""
    width, height = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    short = min(width, height)
    badge_font = _font(max(14, short // 6))
    left, top, right, bottom = draw.textbbox((0, 0), "DEMO", font=badge_font)
    pad = max(4, short // 40)
    draw.rectangle(
        (pad, pad, pad * 3 + right - left, pad * 3 + bottom - top), fill=(200, 20, 40, 230)
    )
    draw.text((pad * 2 - left, pad * 2 - top), "DEMO", font=badge_font, fill=(255, 255, 255, 255))
    caption_font = _font(max(10, short // 16))
    lines = _wrap(prompt.strip() or "(no prompt)", caption_font, width - 4 * pad, max_lines=3)
    line_height = int(caption_font.getbbox("Ag")[3]) + pad // 2
    band_top = height - line_height * len(lines) - 2 * pad
    draw.rectangle((0, band_top, width, height), fill=(0, 0, 0, 150))
    for index, line in enumerate(lines):
        y = band_top + pad + index * line_height
        draw.text((2 * pad, y), line, font=caption_font, fill=(255, 255, 255, 255))
    return layer


def _font(size: int) -> _Font:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # a Pillow built without FreeType
        return ImageFont.load_default()


def _wrap(text: str, font: _Font, width: int, *, max_lines: int) -> list[str]:
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".") + " …"
    # A single word wider than the frame is cut to fit.
    return [_clip(line, font, width) for line in lines]


def _clip(line: str, font: _Font, width: int) -> str:
    while len(line) > 1 and font.getlength(line) > width:
        line = line[:-2] + "…"
    return line


def _decode_image(data_url: str | None) -> Image.Image | None:
    if not data_url:
        return None
    _, _, payload = data_url.partition(",")
    try:
        raw = base64.b64decode(payload, validate=True)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, ValueError, OSError):
        log.warning("demo: the first frame could not be read; using a plain background")
        return None
    return image


def _even_fit(width: int, height: int) -> tuple[int, int]:
    """Output size with the image's aspect, ``LONG_SIDE`` on the long side, even numbers."""
    if width >= height:
        return LONG_SIDE, max(2, round(LONG_SIDE * height / width / 2) * 2)
    return max(2, round(LONG_SIDE * width / height / 2) * 2), LONG_SIDE


def _gradient(prompt: str, size: tuple[int, int]) -> Image.Image:
    """A two-colour gradient, its colours taken from the prompt (same prompt, same look)."""
    digest = hashlib.sha256(prompt.encode()).digest()
    start, end = digest[0:3], digest[3:6]
    mask = Image.linear_gradient("L").rotate(45, expand=True).resize(size)
    first = Image.new("RGB", size, (start[0] // 2, start[1] // 2, start[2] // 2 + 60))
    second = Image.new("RGB", size, (end[0] // 2 + 80, end[1] // 2 + 40, end[2] // 2))
    return Image.composite(first, second, mask)


#: The class ``providers.registry`` builds for this provider.
ADAPTER = DemoProvider
