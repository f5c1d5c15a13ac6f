"""The bot's own HTTP server: ``/healthz``, ``/metrics``, and what others mount on it.

Provider callbacks (``hailuo.callbacks``) and the demo provider's files
(``providers.demo``) add their routes through ``mounts``, before it starts.

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
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from hailuo.metrics import Metrics

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
        disk_ok: Callable[[], Awaitable[bool]] | None = None,
        worker_alive: Callable[[], bool] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._gateway_connected = gateway_connected
        self._database_ok = database_ok
        self._disk_ok = disk_ok
        self._worker_alive = worker_alive
        self._jobs_by_state = jobs_by_state
        self.metrics = metrics
        self.app = web.Application()
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/metrics", self.render_metrics)
        for mount in mounts:
            mount(self.app)
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        gateway = self._gateway_connected()
        database = await _within(self._database_ok, "database")
        disk = await _within(self._disk_ok, "disk") if self._disk_ok is not None else True
        worker = self._worker_alive() if self._worker_alive is not None else True
        ok = gateway and database and disk and worker
        body = {
            "status": "ok" if ok else "unhealthy",
            "gateway": gateway,
            "database": database,
            "disk": disk,
            "worker": worker,
        }
        return web.json_response(body, status=200 if ok else 503)

    async def render_metrics(self, request: web.Request) -> web.Response:
        text = self.metrics.render(await self._jobs_by_state())
        return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _within(check: Callable[[], Awaitable[bool]], name: str) -> bool:
    """One check's answer; a check stuck behind a held write lock counts as failed."""
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check()
    except TimeoutError:
        log.warning("health check %s did not answer within %.0f s", name, CHECK_SECONDS)
        return False
