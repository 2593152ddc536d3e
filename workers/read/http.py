"""Everything the projector serves on its one port: the JSON API, the web timeline and
``/metrics``. All read-only."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from ricochet.workers.observe.metrics import ProjectorCollector
from ricochet.workers.observe.serving import metrics_handler
from ricochet.workers.read import api
from ricochet.workers.read import web as pages
from ricochet.workers.read.projector import Projector


def projector_app(projector: Projector) -> web.Application:
    """The API, the pages and the metrics of ``projector``, in a registry of its own."""
    application = api.app(projector.provenance, lambda: projector.projection, projector.progress)
    pages.add_pages(application, lambda: projector.projection)
    registry = CollectorRegistry()
    registry.register(ProjectorCollector(projector))
    application.router.add_get("/metrics", metrics_handler(registry, projector.refresh_tail))
    return application
