"""A node of a real 3-node cluster stopped under live work: every connection fails over.

The cluster is started beside the default broker as ``tools/local-cluster.sh``
does it (own node names, ports, config files and data directories under a
temporary directory), and is stopped at the end whatever happens, its nodes
killed by pid if ``rabbitmqctl stop`` does not end them. Ports 5691-5693 (AMQP)
and 25691-25693 (distribution) keep clear of that script's 5681-5683.

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
import json
import os
import shutil
import signal
import socket
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
from tests.integration.harness import bind_target, eventually, log_events
from tests.integration.processes import Fleet, WorkerProcess
from tests.integration.test_failover import logged, node_of

HOST = socket.gethostname().split(".")[0]
PORTS = (5691, 5692, 5693)
DIST_PORTS = (25691, 25692, 25693)
NODES = tuple(f"ricochet-failover-{i}@{HOST}" for i in (1, 2, 3))
REPO = Path(__file__).resolve().parents[2]
LONG_S = 8.0
"""Attempts that run through the fault: longer than the stop and the fail-over."""
QUICK = 40
CLOSE_S = 15.0


def ctl(node: str, *args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", "-n", node, *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


class LocalCluster:
    """Three RabbitMQ nodes on this machine, in one cluster, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, index: int) -> Path:
        return self.root / f"n{index + 1}"

    def start(self) -> None:
        for index, port in enumerate(PORTS):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise AssertionError(f"port {port} is taken: a cluster left from another run?")
            self._start_node(index)
        for index, node in enumerate(NODES):
            ctl(node, "wait", str(self._dir(index) / "pid"), "--timeout", "120", timeout=150)
        for node in NODES[1:]:
            ctl(node, "stop_app")
            ctl(node, "join_cluster", NODES[0])
            ctl(node, "start_app")

    def _start_node(self, index: int) -> None:
        directory = self._dir(index)
        for sub in ("log", "mnesia"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        config = directory / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.local = 127.0.0.1:{PORTS[index]}\n")
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": NODES[index],
            "RABBITMQ_NODE_PORT": str(PORTS[index]),
            "RABBITMQ_DIST_PORT": str(DIST_PORTS[index]),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(directory / "pid"),
        }
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.root)], check=True)
        subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, timeout=60)

    def stop(self) -> None:
        """Stop every node; kill by pid what does not stop; remove the data. Never raises."""
        for index, node in reversed(list(enumerate(NODES))):
            with contextlib.suppress(Exception):
                ctl(node, "stop", timeout=60)
            pid_file = self._dir(index) / "pid"
            with contextlib.suppress(Exception):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    root = Path(f"/tmp/ricochet-failover-{os.getpid()}")
    started = LocalCluster(root)
    try:
        started.start()
        yield started
    finally:
        started.stop()


def addresses(*order: int) -> str:
    first, *rest = order
    others = [f"127.0.0.1:{PORTS[i]}" for i in rest]
    return ",".join([f"amqp://guest:guest@127.0.0.1:{PORTS[first]}/", *others])


def streams_online(namespace: str) -> bool:
    """Every stream of ``namespace`` has a running member on each node: right after a
    declare the replicas may still be starting, and the test is to measure a fail-over,
    not a stream's start-up."""
    listed = ctl(
        NODES[0], "list_queues", "-p", "/", "name", "type", "online", "--formatter", "json"
    )
    streams = [
        row
        for row in json.loads(listed)
        if row["type"] == "stream" and row["name"].startswith(f"{namespace}.")
    ]
    return bool(streams) and all(len(row["online"]) == len(NODES) for row in streams)


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

    def __init__(self, namespace: str, directory: Path) -> None:
        self.on_first = Settings(amqp_url=addresses(0, 1, 2), namespace=namespace)
        self.on_second = Settings(amqp_url=addresses(1, 2, 0), namespace=namespace)
        self.raw = Settings(amqp_url=addresses(0), namespace=namespace)  # plain aio-pika: one URL
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
        await eventually(lambda: streams_online(self.on_first.namespace), timeout=90, every=0.5)
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
    scene = Scenario(namespace, tmp_path)
    client, node = scene.client, [f"127.0.0.1:{port}" for port in PORTS]
    try:
        worker = await scene.start()
        long = [await client.submit("p.sleepy_once", [LONG_S]) for _ in range(4)]
        before = [await client.submit("p.quick", [i]) for i in range(QUICK)]
        await eventually(lambda: all(scene.runs(h.id) for h in long), timeout=30, every=0.05)

        stopped = time.monotonic()
        await asyncio.to_thread(ctl, NODES[0], "stop_app")
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
        await asyncio.to_thread(ctl, NODES[0], "start_app")
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
