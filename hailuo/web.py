"""The bot's own HTTP server: ``/healthz``, ``/metrics``, and what others mount on it.

Provider callbacks (``hailuo.callbacks``) and the demo provider's files
(``providers.demo``) add their routes through ``mounts``, before it starts.

``/healthz`` is 200 only while the gateway is connected and the database
answers, so a container orchestrator restarts a bot that is silently stuck.
Neither page carries a secret or a prompt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from hailuo.metrics import Metrics


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
    ) -> None:
        self.host = host
        self.port = port
        self._gateway_connected = gateway_connected
        self._database_ok = database_ok
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
        database = await self._database_ok()
        ok = gateway and database
        body = {"status": "ok" if ok else "unhealthy", "gateway": gateway, "database": database}
        return web.json_response(body, status=200 if ok else 503)

    async def render_metrics(self, request: web.Request) -> web.Response:
        text = self.metrics.render(await self._jobs_by_state())
        return web.Response(text=text, content_type="text/plain", charset="utf-8")
