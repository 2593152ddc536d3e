"""On a 3-node cluster, a node down takes nothing of Ricochet's with it (issue 15 item 5).

A cluster of our own is started beside the default broker (own node names, ports,
config files and data directories under /tmp, as ``../shared/tools/local-cluster.sh``
does) and stopped at the end whatever happens. With a classic heartbeat queue, the node
holding it down made ``queue.declare`` fail (``home node ... is down``), so no worker,
``submit`` or ``replay`` could start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import running_worker

START_TIMEOUT_S = 60
CTL_TIMEOUT_S = 60
JSON = ("--formatter", "json")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ctl(node: str, *args: str, timeout: float = CTL_TIMEOUT_S) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", "-n", node, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


class LocalCluster:
    """Three RabbitMQ nodes on this machine, clustered; ``close`` stops them and removes
    their data, whatever state they are in."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        host = socket.gethostname().split(".")[0]
        self.base = Path(f"/tmp/ricochet-cluster-{tag}")
        self.nodes = [f"rq{tag}n{i}@{host}" for i in (1, 2, 3)]
        self.ports = [free_port() for _ in self.nodes]
        self._dist_ports = [free_port() for _ in self.nodes]

    def url(self, first: str | None = None) -> str:
        """Every node's address, comma-separated (RICOCHET_AMQP_URL's list form), ``first``'s
        first."""
        order = sorted(range(len(self.nodes)), key=lambda i: self.nodes[i] != first)
        return ",".join(f"amqp://guest:guest@127.0.0.1:{self.ports[i]}/" for i in order)

    def start(self) -> None:
        for index, node in enumerate(self.nodes):
            self._spawn(index, node)
        for index, node in enumerate(self.nodes):
            pid_file = str(self._pid_file(index))
            ctl(
                node,
                "wait",
                pid_file,
                "--timeout",
                str(START_TIMEOUT_S),
                timeout=START_TIMEOUT_S + 10,
            )
        for node in self.nodes[1:]:
            ctl(node, "stop_app")
            ctl(node, "join_cluster", self.nodes[0])
            ctl(node, "start_app")
            ctl(node, "await_startup", timeout=START_TIMEOUT_S)

    def _spawn(self, index: int, node: str) -> None:
        directory = self.base / f"n{index + 1}"
        for sub in ("log", "mnesia"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        config = directory / "rabbitmq.conf"
        # The machine's rabbitmq.conf pins 127.0.0.1:5672: each node needs its own file.
        config.write_text(f"listeners.tcp.local = 127.0.0.1:{self.ports[index]}\n")
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for path in self.base.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_PORT": str(self.ports[index]),
            "RABBITMQ_DIST_PORT": str(self._dist_ports[index]),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(self._pid_file(index)),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        }
        subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, timeout=60)

    def leader_of(self, queue: str) -> str:
        """The node leading a quorum queue (for a classic queue: the node it lives on)."""
        listed = json.loads(ctl(self.nodes[0], "list_queues", "name", "leader", *JSON))
        (row,) = [row for row in listed if row["name"] == queue]
        if row["leader"]:
            return str(row["leader"])
        (home,) = [n for n in self.nodes if queue in ctl(n, "list_queues", "--local", "name")]
        return home

    def _pid_file(self, index: int) -> Path:
        return self.base / f"n{index + 1}" / "pid"

    def close(self) -> None:
        for node in self.nodes:
            # Not up (yet, or any more): then killed below, if it runs at all.
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                ctl(node, "stop", timeout=CTL_TIMEOUT_S)
        for pid in self._our_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def _our_pids(self) -> list[int]:
        """The Erlang VMs of our nodes (their unique names in their environment), whatever
        state they are in: a node still booting has no pid file yet. Only ``beam.smp``:
        epmd, shared with every other node here, may have been started with our variables."""
        wanted = {f"RABBITMQ_NODENAME={node}".encode() for node in self.nodes}
        return [pid for pid in _beam_pids() if wanted & _environment(pid)]


def _beam_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and b"beam.smp" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
    return pids


def _environment(pid: int) -> set[bytes]:
    try:
        return set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return set()


@contextlib.contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.mark.quarantine  # failed in 2 of 4 fresh-clone CI runs (a connection closed)
async def test_workers_start_and_submit_works_with_the_heartbeat_leader_down() -> None:
    """The node leading ``<ns>.heartbeats`` stopped: a new worker starts (it declares the
    whole topology and joins the heartbeat queue), and a submitted execution runs."""
    began = time.monotonic()
    with local_cluster() as cluster:
        settings = Settings(amqp_url=cluster.url(), namespace=f"t{uuid.uuid4().hex[:10]}")
        async with Client(settings):
            pass  # the core topology, on all three nodes
        leader = cluster.leader_of(Names(settings.namespace).supervisor)
        ctl(leader, "stop_app")
        # Connected to a node that is up (fail-over among addresses is tested elsewhere):
        # what is tested here is that nothing needed lived on the stopped one.
        survivor = next(node for node in cluster.nodes if node != leader)
        settings = settings.model_copy(update={"amqp_url": cluster.url(first=survivor)})
        async with running_worker(settings, tasks.ALL), Client(settings) as client:
            handle = await client.submit("t.ok", [21])
            assert await handle.result(timeout=60) == {"doubled": 42}
    assert time.monotonic() - began < 170, "keep the cluster test bounded"
