"""Serving a registry in Prometheus' text format over HTTP (aiohttp, as the projector's API).

An aiohttp server rather than ``prometheus_client.start_http_server``: its
thread would read the event loop's state from another thread, and some values
(the stream's tail, for lags) are asked of the broker just before a scrape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ricochet.workers.logs import get_logger

log = get_logger(__name__)

Refresh = Callable[[], Awaitable[None]]


def metrics_handler(
    registry: CollectorRegistry, refresh: Refresh | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /metrics: ``refresh`` first (a failure there still serves the rest)."""

    async def metrics(_: web.Request) -> web.Response:
        if refresh is not None:
            try:
                await refresh()
            except Exception as err:  # a scrape must not fail because the broker is away
                log.warning("metrics.refresh_failed", error=repr(err))
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


async def serve_metrics(
    registry: CollectorRegistry, port: int, refresh: Refresh | None = None, host: str = "0.0.0.0"
) -> tuple[web.AppRunner, int]:
    """Serve ``/metrics`` on ``host:port`` (0: any free port); returns the runner and the port.

    All interfaces by default, as Prometheus' own client does: the scraper is
    usually on another host or container.
    """
    application = web.Application()
    application.router.add_get("/metrics", metrics_handler(registry, refresh))
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("metrics.serving", url=f"http://{host}:{bound}/metrics")
    return runner, int(bound)
