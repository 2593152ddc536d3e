"""The deploy files for observing (issue 12) name only metrics that exist, and scrape
the processes that serve them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from ricochet.workers.observe.metrics import ProjectorCollector, WorkerMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUFFIXES = ("_bucket", "_sum", "_count")


class _Projector:
    offset: int | None = 3
    unreadable = 0
    tail: int | None = 5
    untrusted = {("ns.events", "not_a_writer"): 1}  # noqa: RUF012 - a stand-in, read only

    def status_counts(self) -> dict[str, int]:
        return {"succeeded": 1}


class _Supervisor:
    active = True
    takeovers = 1
    attempts_lost = 0
    unrecoverable = 0
    log_lag: int | None = 0
    trigger_counts = {"started": 1}  # noqa: RUF012 - a stand-in, read only


def exposed_names() -> set[str]:
    """Every sample name a worker and a projector expose, with something counted."""
    worker = WorkerMetrics()
    worker.attempts.attempt_started("t", 0.1)
    worker.attempts.attempt_ran("t", 0.1)
    worker.attempts.ended[("t", "failed", "exception")] += 1
    worker.attempts.retries["t"] += 1
    worker.commits.confirmed(3)
    worker.watch_supervisor(lambda: _Supervisor())
    worker.watch_untrusted(lambda: {("ns.checkpoints", "missing_user_id"): 1})
    projector = CollectorRegistry()
    projector.register(ProjectorCollector(_Projector()))
    text = (generate_latest(worker.registry) + generate_latest(projector)).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    """A renamed metric must not leave a Grafana panel silently empty."""
    dashboard = json.loads((DEPLOY / "grafana" / "ricochet-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"ricochet_\w+", target["expr"])
    }
    exposed = exposed_names()
    counted_families = {n.removesuffix(s) for n in exposed for s in SUFFIXES if n.endswith(s)}
    assert set() == queried - exposed - counted_families
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in ("retries scheduled by target", "lateness", "outcomes", "log lag"):
        assert wanted in titles


def test_prometheus_scrapes_the_worker_and_the_projector_of_the_compose_file() -> None:
    """The scrape targets are the compose services, on the ports they serve metrics on."""
    compose = (DEPLOY / "compose.yaml").read_text()
    scrape = (DEPLOY / "prometheus.yml").read_text()
    assert '"--metrics-port", "9100"' in compose
    assert '"--http", "0.0.0.0:8765"' in compose
    assert "worker:9100" in scrape
    assert "projector:8765" in scrape
    for mounted in re.findall(r"\./([\w./-]+):", compose):
        assert (DEPLOY / mounted).exists(), mounted
