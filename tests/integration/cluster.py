"""A real 3-node RabbitMQ cluster beside the default broker, for the cluster tests.

Started as ``../shared/tools/local-cluster.sh`` does it: each node has its own
name, AMQP and distribution ports, config file (the machine's
``/etc/rabbitmq/rabbitmq.conf`` pins 127.0.0.1:5672, which would override
``RABBITMQ_NODE_PORT``) and data directories, under ``/tmp``.

Several test runs share this machine, so a cluster takes a *slot*: three AMQP
ports in 5684-5693 (distribution ports 20,000 higher), held with a lock file for
its whole life and probed free first; node names carry a random tag, so a node
left by another run is never taken for ours.

It is stopped at the end whatever happens. ``close`` stops every node and kills
by pid what does not stop (also nodes still booting, found by their name in
their environment). And a reaper process, in a session of its own, stops the
nodes if the test process dies first (killed, or ended by a timeout that skips
``finally`` blocks): a left-over cluster would hold ports, memory and CPU for
every later run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tests.integration import node_host

SLOTS = (5684, 5687, 5691)
"""First AMQP port of each slot; ``local-cluster.sh`` keeps 5681-5683."""
DIST_OFFSET = 20_000
SIZE = 3
START_TIMEOUT_S = 120
CTL_TIMEOUT_S = 60
SLOT_WAIT_S = 300
HOST = node_host.host_name()
LOCKS = Path("/tmp")


def run_ctl(node: str, *args: str, timeout: float = CTL_TIMEOUT_S) -> str:
    """``rabbitmqctl -n node args``; raises ``CalledProcessError`` with its output."""
    done = subprocess.run(
        node_host.command("rabbitmqctl", "-q", "-n", node, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, done.args, done.stdout, f"{done.stderr}{done.stdout}"
        )
    return done.stdout


class LocalCluster:
    """Three clustered nodes; index 0 is the one the others joined."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or uuid.uuid4().hex[:6]
        self.base = Path(f"/tmp/ricochet-cluster-{self.tag}")
        self.nodes = tuple(f"ricochet-{self.tag}-{i}@{HOST}" for i in range(1, SIZE + 1))
        self.ports: tuple[int, ...] = ()
        self._slot: IO[bytes] | None = None
        self._reaper: subprocess.Popen[bytes] | None = None

    # -- addresses --------------------------------------------------------------------

    def address(self, index: int) -> str:
        """``host:port`` of a node, as ``broker.connected`` logs name it."""
        return f"127.0.0.1:{self.ports[index]}"

    def url(self, *order: int) -> str:
        """``RICOCHET_AMQP_URL`` listing every node (``order`` first, then the rest): the
        first a full URL, the others ``host:port``, which reuse its credentials and vhost."""
        rest = [i for i in range(SIZE) if i not in order]
        first, *others = [*order, *rest]
        return ",".join(
            [f"amqp://guest:guest@{self.address(first)}/", *(self.address(i) for i in others)]
        )

    def index_of(self, node: str) -> int:
        """The index of a node given by name (``rabbit@…``) or by ``host:port``."""
        for index, name in enumerate(self.nodes):
            if node in (name, self.address(index)):
                return index
        raise KeyError(node)

    # -- control ----------------------------------------------------------------------

    def ctl(self, index: int, *args: str, timeout: float = CTL_TIMEOUT_S) -> str:
        return run_ctl(self.nodes[index], *args, timeout=timeout)

    def stop_app(self, index: int) -> None:
        self.ctl(index, "stop_app")

    def start_app(self, index: int) -> None:
        """Start a stopped node's application and wait until it serves."""
        self.ctl(index, "start_app", timeout=START_TIMEOUT_S)
        self.ctl(index, "await_startup", timeout=START_TIMEOUT_S)

    def up(self) -> list[int]:
        """Indexes of the nodes whose application runs."""
        return [i for i in range(SIZE) if _answers(self.address(i))]

    def queues(self, namespace: str) -> list[dict[str, Any]]:
        """``name``, ``type``, ``leader``, ``members`` and ``online`` of each queue of
        ``namespace``, asked of a node that is up."""
        asked = self.up()[0]
        listed = self.ctl(
            asked,
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "online",
            "--formatter",
            "json",
        )
        return [row for row in json.loads(listed) if row["name"].startswith(f"{namespace}.")]

    def leader_of(self, queue: str) -> int:
        """The index of the node leading a quorum queue or stream."""
        namespace = queue.split(".", 1)[0]
        (row,) = [row for row in self.queues(namespace) if row["name"] == queue]
        return self.index_of(str(row["leader"]))

    def replicated(self, namespace: str, kinds: tuple[str, ...] = ("quorum", "stream")) -> bool:
        """Every quorum queue and stream of ``namespace`` has a member running on every
        node. Right after a declare, or after a node came back, members may still be
        starting: a test that measures a fault waits for this first, so it measures the
        fault and not a queue's start-up."""
        rows = [row for row in self.queues(namespace) if row["type"] in kinds]
        return bool(rows) and all(len(row["online"]) == SIZE for row in rows)

    def settled(self, namespace: str) -> bool:
        """After a node stopped: every quorum queue and stream of ``namespace`` has a
        leader on a running node, and a member on each running node (the elections the
        stop caused are over)."""
        running = {self.nodes[i] for i in self.up()}
        rows = [row for row in self.queues(namespace) if row["type"] in ("quorum", "stream")]
        return bool(rows) and all(
            row["leader"] in running and running <= set(row["online"]) for row in rows
        )

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        self._take_slot()
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.cluster", "reap", str(os.getpid()), self.tag],
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for index in range(SIZE):
            self._spawn(index)
        for index in range(SIZE):
            pid_file = str(self._dir(index) / "pid")
            waited = ("wait", pid_file, "--timeout", str(START_TIMEOUT_S))
            self.ctl(index, *waited, timeout=START_TIMEOUT_S + 10)
        for index in range(1, SIZE):
            self.ctl(index, "stop_app")
            self.ctl(index, "join_cluster", self.nodes[0])
            self.start_app(index)
        self.ctl(0, "await_online_nodes", str(SIZE), timeout=START_TIMEOUT_S)

    def _take_slot(self) -> None:
        """The first slot whose lock is free and whose ports nobody listens on; waits
        while every slot is in use by other runs."""
        deadline = time.monotonic() + SLOT_WAIT_S
        while True:
            for first in SLOTS:
                lock = (LOCKS / f"ricochet-cluster-slot-{first}.lock").open("ab")
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    lock.close()
                    continue
                ports = tuple(range(first, first + SIZE))
                if all(_free(p) and _free(p + DIST_OFFSET) for p in ports):
                    self._slot, self.ports = lock, ports
                    return
                lock.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"no free cluster slot among {SLOTS} for {SLOT_WAIT_S} s")
            time.sleep(2)

    def _dir(self, index: int) -> Path:
        return self.base / f"n{index + 1}"

    def _spawn(self, index: int) -> None:
        """Start node ``index``; its paths are as the node sees them (``node_host``)."""
        directory = self._dir(index)
        for sub in ("log", "mnesia"):
            node_host.outside(directory / sub).mkdir(parents=True, exist_ok=True)
        config = directory / "rabbitmq.conf"
        node_host.outside(config).write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.ports[index]}\n"
        )
        node_host.hand_over(node_host.outside(self.base))
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.nodes[index],
            "RABBITMQ_NODE_PORT": str(self.ports[index]),
            "RABBITMQ_DIST_PORT": str(self.ports[index] + DIST_OFFSET),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        }
        server = node_host.command("rabbitmq-server", "-detached")
        subprocess.run(server, env=env, check=True, timeout=60)

    def logs(self, index: int) -> str:
        """The node's own log, for a failing test's report."""
        found = sorted(node_host.outside(self._dir(index) / "log").glob("*.log"))
        return "".join(path.read_text(errors="replace") for path in found)

    def close(self) -> None:
        """Stop every node, kill what does not stop, remove the data. Never raises."""
        stop(self.tag, self.nodes)
        if self._reaper is not None and self._reaper.poll() is None:
            self._reaper.kill()
            self._reaper.wait(10)
        if self._slot is not None:
            self._slot.close()
            self._slot = None


def stop(tag: str, nodes: tuple[str, ...]) -> None:
    for node in nodes:
        # Not up (yet, or any more): then killed below, if it runs at all.
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            run_ctl(node, "stop", timeout=CTL_TIMEOUT_S)
    for pid in _beam_pids(nodes):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(node_host.outside(Path(f"/tmp/ricochet-cluster-{tag}")), ignore_errors=True)


def _beam_pids(nodes: tuple[str, ...]) -> list[int]:
    """The Erlang VMs of ``nodes`` (their names in their environment), whatever state
    they are in: a node still booting has no pid file yet. Only ``beam.smp``: epmd,
    shared with every other node here, may have been started with our variables."""
    wanted = {f"RABBITMQ_NODENAME={node}".encode() for node in nodes}
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if not proc.name.isdigit() or b"beam.smp" not in (proc / "cmdline").read_bytes():
                continue
            if wanted & set((proc / "environ").read_bytes().split(b"\0")):
                pids.append(int(proc.name))
    return pids


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(address: str) -> bool:
    """An AMQP listener accepts connections there (a stopped app closes its listener)."""
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, int(port))) == 0


@contextlib.contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    """A started cluster, stopped when the block ends, however it ends."""
    cluster = LocalCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def until_gone(parent: int) -> None:
    """Return once process ``parent`` no longer exists (a reaper's wait)."""
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return
        time.sleep(1)


def reap(parent: int, tag: str) -> None:
    """Run beside a test process: once it is gone, stop the cluster it left."""
    until_gone(parent)
    stop(tag, tuple(f"ricochet-{tag}-{i}@{HOST}" for i in range(1, SIZE + 1)))


if __name__ == "__main__" and sys.argv[1:2] == ["reap"]:
    reap(int(sys.argv[2]), sys.argv[3])
