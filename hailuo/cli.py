"""Operator commands, no Discord: ``doctor``, ``generate``, ``migrate`` and ``backup``.

``doctor`` is in ``hailuo.doctor``. ``migrate --to postgresql://…`` moves the SQLite
database into an empty PostgreSQL one and checks every count and balance;
``backup PATH`` copies the SQLite database while the bot runs (``storage.moving``).

``generate`` runs one job through the same core as the bot (``JobDesk`` and
``Worker``) with a notifier that writes the video to ``--out`` and draws a
progress bar on stderr. It uses a throw-away database, so a running bot never
sees (or posts) the job. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web

from hailuo.assembly import Parts, Ports, build_core
from hailuo.clock import system_clock
from hailuo.doctor import doctor
from hailuo.i18n.messages import render
from hailuo.i18n.status_text import status_line
from hailuo.jobs.capabilities import image_plan, serving_providers
from hailuo.jobs.desk import JobRequest
from hailuo.jobs.notify import AdminNotice, PostFailed, Shrunk, StatusView
from hailuo.jobs.worker import WorkerConfig
from hailuo.media import preparing
from hailuo.model.errors import HailuoError
from hailuo.model.job import Job
from hailuo.model.spec import JobSpec, Mode
from hailuo.model.status import JobStatus
from hailuo.money.quotas import QuotaPolicy
from hailuo.records import ApprovalRequest, AuditEntry, StoredImage
from hailuo.settings import DEMO, Settings, SettingsError, load_settings
from providers.demo import DemoProvider
from providers.registry import TABLE, build_providers
from storage.db import Database
from storage.moving import MoveRefused, backup_sqlite, move_to_postgres
from storage.opening import DatabaseOpenError, is_postgres_url
from storage.postgres import redacted

log = logging.getLogger(__name__)


class CliNotifier:
    """Implements ``hailuo.jobs.notify.Notifier`` for a terminal: a progress bar, then a file."""

    def __init__(self, out: Path, stream: TextIO) -> None:
        self.out = out
        self.stream = stream
        self.finished = asyncio.Event()
        self.link: str | None = None
        self.final: Job | None = None

    async def show_status(self, view: StatusView) -> None:
        job = view.job
        words = status_line(job, view.queue_position, view.queue_eta)
        percent = 100 if job.status is JobStatus.DELIVERED else (job.progress or 0)
        bar = "#" * (percent // 5) + "-" * (20 - percent // 5)
        self.stream.write(f"\r[{bar}] {percent:3d}% {words[:60]:<60}")
        if job.status.terminal:
            self.stream.write("\n")
            self.final = job
            self.finished.set()
        self.stream.flush()

    async def post_video(
        self, job: Job, video: Path, size: int, *, shrunk: Shrunk | None = None
    ) -> int:
        await asyncio.to_thread(shutil.copyfile, video, self.out)
        return 1

    async def post_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        self.link = url
        return 1

    async def find_delivery(self, job: Job) -> int | None:
        return None

    async def dm_video(self, job: Job, video: Path, size: int) -> int:
        """A terminal has no channel to lose: the file goes where it always does."""
        return await self.post_video(job, video, size)

    async def dm_link(
        self, job: Job, url: str, reason: str, *, size: int | None = None, limit: int | None = None
    ) -> int:
        return await self.post_link(job, url, reason)

    async def guild_upload_limit(self, guild_id: int) -> int | None:
        return None

    async def admin_notice(self, notice: AdminNotice) -> None:
        self.stream.write("\n" + render(notice.rule, None, **notice.params) + "\n")

    async def tell_member(self, job: Job, rule: str, params: Mapping[str, object]) -> bool:
        """The terminal is the member's own: said there."""
        self.stream.write("\n" + render(rule, job.locale, **params) + "\n")
        return True

    async def log_event(self, channel_id: int, entry: AuditEntry) -> None:
        """The CLI's throw-away server has no log channel: nothing to mirror."""


class _NoModerators:
    """``ApprovalNotifier`` of the CLI: its server holds nothing for approval."""

    async def post_request(
        self, channel_id: int, job: Job, request: ApprovalRequest, image: StoredImage | None
    ) -> int:
        raise PostFailed("the command line has no moderators")

    async def show_decision(self, job: Job, request: ApprovalRequest) -> None:
        return None


class _NoChannel:
    """``VideoRemover`` of the CLI: nothing is posted, so nothing is removed."""

    async def remove_video(self, job: Job) -> bool:
        return False


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    out: Path
    image: Path | None = None
    provider: str | None = None
    duration: int = 6
    resolution: str = "768P"


async def generate(settings: Settings, request: GenerateRequest, stream: TextIO) -> int:
    """Make one video through the bot's core and write it to ``request.out``."""
    spec = JobSpec(
        mode=Mode.IMAGE if request.image else Mode.TEXT,
        prompt=request.prompt,
        duration=request.duration,
        resolution=request.resolution,
    )
    order = list(settings.provider_names)
    if request.provider is not None:
        if request.provider not in order:
            print(f"hailuo: provider {request.provider} is not configured.", file=stream)
            return 2
        order = [request.provider]
    try:
        order = serving_providers(spec, order, TABLE)
        stored = await _read_image(request.image, order) if request.image else {}
    except HailuoError as exc:
        print(f"hailuo: {render(exc.rule, None, **exc.params)}", file=stream)
        return 2
    except OSError as exc:  # a missing or unreadable --image: the operator's typo, not a bug
        print(f"hailuo: cannot read the image {request.image}: {exc.strerror or exc}.", file=stream)
        return 2
    with tempfile.TemporaryDirectory(prefix="hailuo-cli-") as tmp:
        db = await Database.open(Path(tmp) / "cli.sqlite3")
        try:
            async with aiohttp.ClientSession() as session:
                return await _run_one(
                    settings, order, spec, stored, request, stream, db, session, Path(tmp)
                )
        finally:
            await db.close()


async def _read_image(path: Path, order: list[str]) -> dict[str, tuple[str, bytes]]:
    data = await asyncio.to_thread(path.read_bytes)
    plan = image_plan(order, TABLE)
    checked = await preparing.inspect_async(data, plan.check)
    prepared = await preparing.prepare_async(
        checked, accepted_formats=plan.send_formats, max_bytes=plan.max_bytes
    )
    return {"first": (prepared.mime, prepared.data)}


async def _run_one(
    settings: Settings,
    order: list[str],
    spec: JobSpec,
    stored: dict[str, tuple[str, bytes]],
    request: GenerateRequest,
    stream: TextIO,
    db: Database,
    session: aiohttp.ClientSession,
    workdir: Path,
) -> int:
    chosen = tuple(p for p in settings.providers if p.name in order)
    providers = build_providers(
        tuple(p for p in chosen if p.name != DEMO),
        session,
        timeout_seconds=settings.provider_timeout,
    )
    runner: web.AppRunner | None = None
    if DEMO in order:
        # The demo's files are served from a loopback server of our own, as in the bot.
        app = web.Application()
        runner = web.AppRunner(app, access_log=None)
        demo = DemoProvider(directory=workdir / "demo", base_url=lambda: _runner_url(runner))
        demo.mount(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        providers[DEMO] = demo
    notifier = CliNotifier(request.out, stream)
    (workdir / "tmp").mkdir()  # the downloads' directory, beside the database as in the bot
    poll = min(settings.poll_seconds, 1.0) if order == [DEMO] else settings.poll_seconds
    # The bot's core on a throw-away server: nothing held for approval, no callbacks.
    local = dataclasses.replace(
        settings,
        database=workdir / "cli.sqlite3",
        providers=chosen,
        public_url=None,
        approval="off",
    )
    core = build_core(
        local,
        db,
        session,
        system_clock,
        Ports(notifier=notifier, approvals=_NoModerators(), remover=_NoChannel()),
        Parts(
            providers={name: providers[name] for name in order},
            quota=QuotaPolicy(daily_credits=100, max_jobs_per_member=5, max_jobs_per_guild=5),
            # A terminal has no upload limit: the whole file is written to --out.
            config=WorkerConfig(
                poll_seconds=poll,
                default_upload_limit=settings.max_video_bytes,
                queue_deadline=settings.queue_timeout,
            ),
        ),
    )
    desk, worker = core.desk, core.worker
    stop = asyncio.Event()
    try:
        job = await desk.create(
            JobRequest(guild_id=0, channel_id=0, user_id=0, spec=spec, images=stored)
        )
        loop = asyncio.create_task(worker.run(stop), name="hailuo-cli-worker")
        await notifier.finished.wait()
        stop.set()
        worker.wake()
        await loop
    finally:
        core.close()
        if runner is not None:
            await runner.cleanup()
    final = await desk.get(job.id)
    if final is not None and final.status is JobStatus.DELIVERED and notifier.link is None:
        print(f"wrote {request.out} ({final.delivery_bytes} bytes)", file=stream)
        return 0
    if notifier.link is not None:
        print(f"the video is too large to fetch; download it here: {notifier.link}", file=stream)
    return 1


def _runner_url(runner: web.AppRunner | None) -> str:
    assert runner is not None and runner.addresses
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


# -- moving and backing up the database ------------------------------------------------------


async def migrate(source: Path, url: str, stream: TextIO) -> int:
    """Copy the SQLite database at ``source`` into the empty PostgreSQL database ``url``."""
    if not is_postgres_url(url):
        print("hailuo: --to takes a postgresql://user:password@host/database URL.", file=stream)
        return 2
    try:
        report = await move_to_postgres(source, url)
    except (MoveRefused, DatabaseOpenError) as refused:
        print(f"hailuo: {refused}.", file=stream)
        return 2
    for table, (before, after) in sorted(report.counts.items()):
        print(f"{table:<20} {before:>8} rows  ->  {after:>8}", file=stream)
    print(
        f"balances: {report.members} member periods and {report.servers} servers compared",
        file=stream,
    )
    if not report.ok:
        print(f"hailuo: the copy does not match: {'; '.join(report.mismatched)}.", file=stream)
        return 1
    print(
        f"moved {source} to {redacted(url)}: every count and balance matches. "
        f"Set HAILUO_DATABASE to the URL and start the bot.",
        file=stream,
    )
    return 0


async def backup(source: Path, dest: Path, stream: TextIO) -> int:
    """An online copy of the SQLite database, checked with ``PRAGMA integrity_check``."""
    try:
        report = await backup_sqlite(source, dest)
    except (MoveRefused, OSError) as refused:
        print(f"hailuo: {refused}.", file=stream)
        return 2
    if report.integrity != "ok":
        print(f"hailuo: the copy at {dest} fails its check: {report.integrity}.", file=stream)
        return 1
    print(f"backed up {source} to {dest} ({report.size} bytes, integrity ok)", file=stream)
    return 0


# -- entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hailuo", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check the configuration and each provider's key")
    make = commands.add_parser("generate", help="make one video without Discord")
    make.add_argument("--prompt", default="", help="what the video shows")
    make.add_argument("--image", type=Path, help="first frame (JPG, PNG or WebP)")
    make.add_argument("--provider", help="use only this configured provider")
    make.add_argument("--duration", type=int, default=6, choices=(6, 10))
    make.add_argument("--resolution", default="768P", choices=("512P", "768P", "1080P"))
    make.add_argument("--out", type=Path, required=True, help="where to write the MP4")
    move = commands.add_parser("migrate", help="copy the SQLite database into PostgreSQL")
    move.add_argument("--to", required=True, help="postgresql://user:password@host/database")
    move.add_argument("--from", dest="source", type=Path, help="the SQLite file (HAILUO_DATABASE)")
    copy = commands.add_parser("backup", help="copy the SQLite database while the bot runs")
    copy.add_argument("path", type=Path, help="the new file to write")
    copy.add_argument("--from", dest="source", type=Path, help="the SQLite file (HAILUO_DATABASE)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(require_discord=False)
    except SettingsError as exc:
        print(f"hailuo: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "doctor":
            return asyncio.run(doctor(settings, sys.stdout))
        if args.command in {"migrate", "backup"}:
            source = args.source or settings.database
            if args.command == "migrate":
                return asyncio.run(migrate(source, args.to, sys.stdout))
            return asyncio.run(backup(source, args.path, sys.stdout))
        request = GenerateRequest(
            prompt=args.prompt,
            out=args.out,
            image=args.image,
            provider=args.provider,
            duration=args.duration,
            resolution=args.resolution,
        )
        return asyncio.run(generate(settings, request, sys.stderr))
    except KeyboardInterrupt:
        print("\nhailuo: interrupted.", file=sys.stderr)
        return 130
