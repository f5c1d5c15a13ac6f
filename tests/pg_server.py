"""A real PostgreSQL server for the tests, on loopback, from the ``pgserver`` wheel.

``pgserver`` (pinned in requirements-dev.txt) ships PostgreSQL's own binaries
inside the package (``pgserver/pginstall/bin``), so a fresh machine gets the
server with ``pip install``; nothing is skipped for want of one.

PostgreSQL refuses to run as root, and CI runs as root: then ``initdb``,
``pg_ctl`` and the server run as an unprivileged user (``nobody``, or
``hailuo-pg`` created with ``useradd`` where there is no ``nobody``), with a
data directory under /tmp owned by that user. When the binaries sit where that
user cannot reach them (a checkout under /root), they are copied to /tmp first.

Each pytest-xdist worker starts its own server on a free port when its first
PostgreSQL test asks for it, and stops it at the end of the session. A small
watchdog process stops the server if the worker dies without its teardown
(SIGKILL), so no postgres outlives the run. Each test gets a fresh database,
a copy of a migrated template (``CREATE DATABASE … TEMPLATE``), dropped after.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from storage.postgres import PostgresDatabase

TEMPLATE = "hailuo_template"
#: ``ENGINES = BOTH_ENGINES`` in a test module runs its ``db`` tests on both (tests/conftest.py).
BOTH_ENGINES = ("sqlite", "postgresql")
SETTINGS = (
    # A test server: no durability needed, small memory, quick start.
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c shared_buffers=16MB -c max_connections=60 -c listen_addresses=127.0.0.1"
)


def install_dir() -> Path:
    """The ``pginstall`` folder of the ``pgserver`` package (found without importing it)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package is missing: pip install -r requirements-dev.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged_user() -> str:
    """``nobody`` where it exists, else a system user of our own."""
    for name in ("nobody", "hailuo-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "hailuo-pg"],
        check=True,
    )
    return "hailuo-pg"


def _as_user(user: str | None) -> list[str]:
    """The prefix that runs a command as ``user`` (None: as ourselves)."""
    if user is None:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"]
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]


@dataclass
class PgServer:
    """One running server: ``admin_url`` reaches its ``postgres`` database as superuser."""

    root: Path
    bin: Path
    port: int
    user: str | None
    watchdog: subprocess.Popen[bytes] | None = None
    #: A copy of the binaries made for ``user`` (removed at the stop), or None.
    copied: Path | None = None
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _template_ready: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def run(self, *args: str) -> None:
        command = [*_as_user(self.user), str(self.bin / args[0]), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}\n{tail}")

    @classmethod
    def start(cls, settings: str = SETTINGS) -> PgServer:
        """Start a server; ``settings`` are its ``-c`` options (the benchmarks ask for a
        durable one: ``bench._pg``)."""
        user = _unprivileged_user() if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="hailuo-pg-"))
        binaries = install_dir() / "bin"
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
            binaries = _reachable(binaries, user)
        server = cls(root, binaries, _free_port(), user)
        if binaries != install_dir() / "bin":
            server.copied = binaries.parent
        server.run("initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        for attempt in range(3):
            try:
                server.run("pg_ctl", "start", "-w", "-t", "60", "-D", str(server.data),
                           "-l", str(root / "server.log"),
                           "-o", f"-p {server.port} -k {root} {settings}")  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                server.port = _free_port()  # the free port was taken meanwhile
        server.watchdog = _watch(server)
        return server

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.copied is not None:
            shutil.rmtree(self.copied, ignore_errors=True)

    async def create_database(self) -> tuple[str, str]:
        """A fresh migrated database: (its name, its URL)."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            if not self._template_ready:
                await conn.execute(f"CREATE DATABASE {TEMPLATE}")
                template = await PostgresDatabase.open(self.url(TEMPLATE))
                await template.close()
                self._template_ready = True
            name = f"t{os.getpid()}_{next(self._names)}"
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        finally:
            await conn.close()
        return name, self.url(name)

    async def create_empty_database(self) -> tuple[str, str]:
        """A fresh database with no schema at all (for the migration runner, ``migrate``)."""
        name = f"e{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        return name, self.url(name)

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


def _reachable(binaries: Path, user: str) -> Path:
    """The binaries where ``user`` can run them: in place, or a copy under /tmp."""
    probe = subprocess.run(
        [*_as_user(user), str(binaries / "postgres"), "--version"],
        capture_output=True,
        check=False,
        cwd="/",
    )
    if probe.returncode == 0:
        return binaries
    copy = Path(tempfile.gettempdir()) / f"hailuo-pginstall-{os.getpid()}"
    if not copy.exists():
        shutil.copytree(binaries.parent, copy, symlinks=True)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(
                path.stat().st_mode | 0o555 if path.is_dir() else path.stat().st_mode | 0o444
            )
    return copy / "bin"


def _watch(server: PgServer) -> subprocess.Popen[bytes]:
    """A process of its own that stops the server (SIGQUIT: immediate) once we are gone."""
    pid = (server.data / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; kill -QUIT {pid}"
    return subprocess.Popen(
        ["/bin/sh", "-c", script],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
