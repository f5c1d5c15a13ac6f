"""The bot's own HTTP server: ``/healthz``, ``/metrics``, and what others mount on it.

Provider callbacks (``hailuo.web.callbacks``) add their routes through ``public_mounts``,
the demo provider's files (``providers.demo``) through ``mounts``, before it starts.

Two sides, so that exposing the port to providers exposes nothing else. Without an
``operator`` address everything is one site (the default: loopback only). With one
(``HAILUO_PUBLIC_URL`` set), the public site serves the callback routes and nothing
else (any other path is 404), and ``/healthz``, ``/metrics`` and the demo's files
live on the operator's own site, loopback unless ``HAILUO_METRICS_HOST`` says
otherwise: provider names and failure counts are not for strangers.

``/healthz`` is 200 only while the gateway is connected, the worker runs, the
database takes a write (``database_ok`` writes a one-row heartbeat: a read alone passes while
every write fails) and the disk has room (``disk_ok``), so a container
orchestrator restarts a bot that is silently stuck. A check that does not
answer within ``CHECK_SECONDS`` counts as failed (Docker's probe waits 5 s).
Neither page carries a secret or a prompt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from hailuo.web.metrics import Metrics

log = logging.getLogger(__name__)

#: How long one health check may take before it counts as failed.
CHECK_SECONDS = 3.0


class HealthServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        gateway_connected: Callable[[], bool],
        database_ok: Callable[[], Awaitable[bool]],
        jobs_by_state: Callable[[], Awaitable[dict[str, int]]],
        metrics: Metrics,
        mounts: Iterable[Callable[[web.Application], None]] = (),
        public_mounts: Iterable[Callable[[web.Application], None]] = (),
        operator: tuple[str, int] | None = None,
        disk_ok: Callable[[], Awaitable[bool]] | None = None,
        worker_alive: Callable[[], bool] | None = None,
        shards: Callable[[], Mapping[int, bool]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.operator = operator
        self._gateway_connected = gateway_connected
        self._database_ok = database_ok
        self._disk_ok = disk_ok
        self._worker_alive = worker_alive
        #: Each Discord shard of this process: connected or not (shown, counted in ``gateway``).
        self._shards = shards
        self._jobs_by_state = jobs_by_state
        self.metrics = metrics
        #: The operator's pages: health, metrics and the bot's own files.
        self.app = web.Application()
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/metrics", self.render_metrics)
        for mount in mounts:
            mount(self.app)
        #: What providers may reach: the callbacks, alone on their site once it is public.
        self.public_app = self.app if operator is None else web.Application()
        for mount in public_mounts:
            mount(self.public_app)
        self._runners: list[web.AppRunner] = []
        self.bound_port: int | None = None
        self.operator_port: int | None = None

    async def start(self) -> None:
        self.bound_port = await self._serve(self.public_app, self.host, self.port)
        if self.operator is None:
            self.operator_port = self.bound_port
        else:
            self.operator_port = await self._serve(self.app, *self.operator)

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def close(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def healthz(self, request: web.Request) -> web.Response:
        gateway = self._gateway_connected()
        database = await _within(self._database_ok, "database")
        disk = await _within(self._disk_ok, "disk") if self._disk_ok is not None else True
        worker = self._worker_alive() if self._worker_alive is not None else True
        ok = gateway and database and disk and worker
        body: dict[str, object] = {
            "status": "ok" if ok else "unhealthy",
            "gateway": gateway,
            "database": database,
            "disk": disk,
            "worker": worker,
        }
        if self._shards is not None:
            body["shards"] = {str(shard): up for shard, up in sorted(self._shards().items())}
        return web.json_response(body, status=200 if ok else 503)

    async def render_metrics(self, request: web.Request) -> web.Response:
        shards = self._shards() if self._shards is not None else None
        text = self.metrics.render(await self._jobs_by_state(), shards)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _within(check: Callable[[], Awaitable[bool]], name: str) -> bool:
    """One check's answer; a check stuck behind a held write lock counts as failed."""
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check()
    except TimeoutError:
        log.warning("health check %s did not answer within %.0f s", name, CHECK_SECONDS)
        return False
