"""Everything the projector serves on its one port: the JSON API, the web timeline and
``/metrics``. All read-only; behind a bearer token when one is set (``auth``)."""

from __future__ import annotations

import ipaddress

from aiohttp import web
from prometheus_client import CollectorRegistry

from ricochet.workers.observe.metrics import ProjectorCollector
from ricochet.workers.observe.serving import metrics_handler
from ricochet.workers.read import api, auth
from ricochet.workers.read import web as pages
from ricochet.workers.read.openapi import OPENAPI
from ricochet.workers.read.projector import Projector

DEFAULT_HOST = "127.0.0.1"
"""Loopback unless told otherwise: what is served holds arguments, results and tracebacks."""


def projector_app(projector: Projector, token: str | None = None) -> web.Application:
    """The API, the pages and the metrics of ``projector``, in a registry of its own;
    every route but ``/health`` asks for ``token`` when there is one."""
    application = api.app(
        projector.provenance,
        lambda: projector.projection,
        projector.progress,
        middlewares=[auth.token_guard(token)],
    )
    pages.add_pages(application, lambda: projector.projection)
    auth.add_session(application, token)
    application.router.add_get("/openapi.json", _openapi)
    registry = CollectorRegistry()
    registry.register(ProjectorCollector(projector))
    application.router.add_get("/metrics", metrics_handler(registry, projector.refresh_tail))
    return application


async def _openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (loopback) as a host and a port (0: any)."""
    host, colon, port = text.rpartition(":")
    if not colon or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65_535:
        raise ValueError(f"{text!r} is not HOST:PORT (a port from 0 to 65535)")
    host = host.removeprefix("[").removesuffix("]") or DEFAULT_HOST
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (``localhost`` counts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
