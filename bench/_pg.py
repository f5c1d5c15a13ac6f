"""PostgreSQL for the benchmarks: a server named by URL, or a throwaway one started here.

The benchmarks measure SQLite unless asked otherwise. ``--database URL`` (or
``HAILUO_BENCH_DATABASE=URL``) runs them on that PostgreSQL server; ``--postgresql``
(or ``HAILUO_BENCH_DATABASE=postgresql``) starts a server of its own for the run, the
way the test suite does (``tests/pg_server.py``: the ``pgserver`` wheel's binaries, an
unprivileged user when run as root), and stops it after.

Unlike the suite's server, this one is durable (``fsync`` and ``synchronous_commit``
on, PostgreSQL's defaults), so its figures compare with SQLite's ``synchronous=FULL``.

Each measurement gets a fresh database (``CREATE DATABASE hailuo_bench_<pid>_<n>``,
dropped at the end): the URL's role needs ``CREATEDB``, and the database the URL names
is never written to.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ENV = "HAILUO_BENCH_DATABASE"
#: ``HAILUO_BENCH_DATABASE`` / ``--postgresql``: start a throwaway server.
START = "postgresql"
#: A durable server (PostgreSQL's defaults for fsync and commits), on loopback.
DURABLE = "-c shared_buffers=128MB -c max_connections=100 -c listen_addresses=127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database URL`` and ``--postgresql``, for a benchmark's own parser."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--database", metavar="URL", help=f"run on this PostgreSQL server (or ${ENV})"
    )
    group.add_argument(
        "--postgresql",
        action="store_true",
        help="start a throwaway PostgreSQL server for the run and measure on it",
    )


def chosen(args: argparse.Namespace) -> str | None:
    """What the run measures: None (SQLite), ``START`` or a ``postgresql://`` URL."""
    value = args.database or (START if args.postgresql else os.environ.get(ENV, "").strip())
    if not value:
        return None
    if value != START and not value.startswith(("postgresql://", "postgres://")):
        raise SystemExit(f"{ENV} / --database takes a postgresql:// URL or {START!r}")
    return value


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


class PgBench:
    """Fresh databases on one PostgreSQL server, for one benchmark run."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.server: object | None = None  # a tests.pg_server.PgServer we started
        self.admin_url = target
        self.version = ""
        self._names = itertools.count()
        self._created: list[str] = []

    async def __aenter__(self) -> PgBench:
        if self.target == START:
            from tests.pg_server import PgServer  # the suite's way of starting one

            server = await asyncio.to_thread(PgServer.start, DURABLE)
            self.server = server
            self.admin_url = server.admin_url
        conn = await asyncpg.connect(self.admin_url)
        try:
            self.version = str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()
        return self

    async def fresh(self) -> str:
        """The URL of a new, empty database (dropped at the end of the run)."""
        name = f"hailuo_bench_{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._created.append(name)
        return with_database(self.admin_url, name)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)  # type: ignore[attr-defined]
            return
        conn = await asyncpg.connect(self.admin_url)
        try:
            for name in self._created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def describe(self) -> dict[str, object]:
        """The server measured on, for the JSON."""
        return {
            "engine": "postgresql",
            "server": "throwaway (bench._pg, durable settings)" if self.server else "given URL",
            "postgresql": self.version,
        }
