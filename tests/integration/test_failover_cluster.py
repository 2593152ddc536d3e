"""A node of a real 3-node cluster stopped under live work: every connection fails over.

The cluster is started beside the default broker (``tests/integration/cluster.py``)
and stopped at the end whatever happens.

Two workers (one listing the nodes from the first, one from the second), a
projector and a client are given all three addresses; the first node, where the
first worker, the projector and the client are, is stopped while two long
attempts run. The test times how long until each connection is back and work
flows, and checks: attempts running through the fault are not declared lost
(heartbeats went on), every body ran once, the CLI passes over the stopped node,
and the projector equals a fresh fold of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from ricochet.engine import Status, project
from ricochet.workers.client.client import Client
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration.cluster import LocalCluster, local_cluster
from tests.integration.harness import bind_target, eventually, log_events
from tests.integration.processes import Fleet, WorkerProcess
from tests.integration.test_failover import logged, node_of

REPO = Path(__file__).resolve().parents[2]
LONG_S = 8.0
"""Attempts that run through the fault: longer than the stop and the fail-over."""
QUICK = 40
CLOSE_S = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as started:
        yield started


def connected(worker: WorkerProcess) -> list[dict[str, object]]:
    """The worker connection's ``broker.connected`` lines (not those of short readers)."""
    return [line for line in logged(worker, "broker.connected") if line["role"] == "worker"]


def cli_submit(settings: Settings) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ricochet", "--log-json", "submit", "p.quick"]
    env = {
        **os.environ,
        "RICOCHET_AMQP_URL": settings.amqp_url,
        "RICOCHET_NAMESPACE": settings.namespace,
    }
    return subprocess.run(
        [*command, "--args", "[5]", "--wait"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def bounded(*closing: Coroutine[Any, Any, Any]) -> None:
    """Close what the test opened, but never hang on a connection stuck on a stopped node
    (what connections did before fail-over): the cluster must still be stopped."""
    for step in closing:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(step, CLOSE_S)


class Scenario:
    """Two workers, a projector and a client on the cluster; the first node stopped."""

    def __init__(self, cluster: LocalCluster, namespace: str, directory: Path) -> None:
        self.cluster = cluster
        self.on_first = Settings(amqp_url=cluster.url(0, 1, 2), namespace=namespace)
        self.on_second = Settings(amqp_url=cluster.url(1, 2, 0), namespace=namespace)
        raw = f"amqp://guest:guest@{cluster.address(0)}/"  # plain aio-pika: one URL
        self.raw = Settings(amqp_url=raw, namespace=namespace)
        self.projector = Projector(self.on_first, directory / "projection.sqlite")
        self.client = Client(self.on_first)
        for name in ("one", "two"):
            (directory / name).mkdir()
        self.one = Fleet(self.on_first, directory / "one")
        self.two = Fleet(self.on_second, directory / "two")
        self.timings: dict[str, float] = {}

    def runs(self, execution_id: str) -> list[str]:
        return self.one.runs(execution_id) + self.two.runs(execution_id)

    async def start(self) -> WorkerProcess:
        """Everything up on the first node (the second worker on the second); returns the
        first worker."""
        await self.client.__aenter__()
        namespace = self.on_first.namespace
        await eventually(lambda: self.cluster.replicated(namespace), timeout=90, every=0.5)
        for target in ("p.sleepy_once", "p.quick"):
            await bind_target(self.raw, target)
        await self.projector.start()
        options = ("--heartbeat", "1", "--loss-window", "10")
        worker = await self.one.start(*options)
        await self.two.start(*options)
        return worker

    async def close(self) -> None:
        self.one.close()
        self.two.close()
        await bounded(self.client.__aexit__(None, None, None), self.projector.stop())

    def lap(self, what: str, since: float) -> None:
        self.timings[what] = round(time.monotonic() - since, 2)


@pytest.mark.timeout(300)
async def test_stopping_the_node_everyone_is_on(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    scene = Scenario(cluster, namespace, tmp_path)
    client, node = scene.client, [cluster.address(i) for i in range(3)]
    try:
        worker = await scene.start()
        long = [await client.submit("p.sleepy_once", [LONG_S]) for _ in range(4)]
        before = [await client.submit("p.quick", [i]) for i in range(QUICK)]
        await eventually(lambda: all(scene.runs(h.id) for h in long), timeout=30, every=0.05)

        stopped = time.monotonic()
        await asyncio.to_thread(cluster.stop_app, 0)
        scene.lap("stop_app", stopped)
        await eventually(lambda: len(connected(worker)) == 2, timeout=60)
        scene.lap("worker back", stopped)
        await eventually(lambda: node_of(client) != node[0], timeout=60)
        scene.lap("client back", stopped)
        first_after = await client.submit("p.quick", [-1])
        await first_after.wait(timeout=60)
        scene.lap("first new execution ended", stopped)
        after = [await client.submit("p.quick", [i]) for i in range(QUICK)]
        cli = await asyncio.to_thread(cli_submit, scene.on_first)
        assert cli.returncode == 0, cli.stderr[-3000:]
        handles = [*long, *before, first_after, *after]
        states = await asyncio.gather(*(h.wait(timeout=90) for h in handles))
        scene.lap("all ended", stopped)
        await asyncio.to_thread(cluster.start_app, 0)
        print(f"\nfail-over timings (s): {scene.timings}")

        bad = [(s.execution_id, s.status, s.cause) for s in states if s.status != Status.SUCCEEDED]
        assert not bad
        assert all(len(s.attempts) == 1 for s in states), "nothing declared lost, no retry"
        assert all(len(scene.runs(h.id)) == 1 for h in handles), "every body ran once"
        reconnected = connected(worker)[-1]
        assert reconnected["node"] in node[1:]
        assert reconnected["reconnected"] is True
        assert f'"node":"{node[0]}"' in cli.stderr, "the CLI tried the stopped node first"
        assert f'"node":"{node[1]}"' in cli.stderr, "and went on to the next"

        ids = [h.id for h in handles]
        projection = scene.projector.projection
        await eventually(
            lambda: all((s := projection.get(i)) and s.is_terminal for i in ids), timeout=60
        )
        fresh = project(await log_events(scene.on_second))
        assert {i: fresh.executions[i] for i in ids} == {i: projection.executions[i] for i in ids}
    finally:
        await scene.close()
