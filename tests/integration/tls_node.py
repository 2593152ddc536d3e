"""A RabbitMQ node with a TLS listener beside the default broker, for the TLS tests.

Started the way ``cluster.py`` starts its nodes: a node name with a random tag, its
own ports, config file and data directories under ``/tmp``, all given by
``RABBITMQ_*`` variables (the machine's ``/etc/rabbitmq/rabbitmq.conf`` is not
read). The node listens only for TLS, on 127.0.0.1:5695 (distribution port
25694), and requires a client certificate signed by its CA
(``verify_peer``, ``fail_if_no_peer_cert``).

The certificates are made per run with ``trustme``: one CA signs the server
certificate (for the host name ``localhost`` only, so ``127.0.0.1`` is "another
host name") and a client certificate; a second CA, which signed nothing the node
shows, is the "wrong CA".

One node at a time on this machine: the ports are held with a lock file for the
node's whole life. It is stopped at the end whatever happens: ``close`` stops it
and kills by pid what does not stop, and a reaper process in a session of its own
does the same if the test process dies first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import trustme

from tests.integration import node_host
from tests.integration.cluster import HOST, _answers, _beam_pids, _free, run_ctl, until_gone

TLS_PORT = 5695
DIST_PORT = 25694
START_TIMEOUT_S = 120
PORTS_WAIT_S = 300
LOCK = Path(f"/tmp/ricochet-tls-node-{TLS_PORT}.lock")
SERVER_NAME = "localhost"
"""The only name in the server certificate; ``127.0.0.1`` reaches the node but is not it."""


@dataclass(frozen=True)
class Certificates:
    """PEM files, as a client of the node would be given them."""

    ca: Path
    """The CA that signed the server and client certificates."""
    other_ca: Path
    """A CA that signed neither."""
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA, a server certificate for ``localhost``, a client certificate, another CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert(SERVER_NAME)
    client = ca.issue_cert("ricochet-test-client", common_name="ricochet-test-client")
    files = Certificates(
        ca=directory / "ca.pem",
        other_ca=directory / "other-ca.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    other.cert_pem.write_to_path(str(files.other_ca))
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    server.private_key_pem.write_to_path(str(files.server_key))
    return files


def node_config(certs: Certificates) -> str:
    """TLS only, on loopback, client certificates required."""
    return "\n".join(
        [
            "listeners.tcp = none",
            f"listeners.ssl.default = 127.0.0.1:{TLS_PORT}",
            f"ssl_options.cacertfile = {node_host.inside(certs.ca)}",
            f"ssl_options.certfile = {node_host.inside(certs.server_cert)}",
            f"ssl_options.keyfile = {node_host.inside(certs.server_key)}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = true",
            "",
        ]
    )


class TlsNode:
    """One RabbitMQ node serving AMQP over TLS only."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or uuid.uuid4().hex[:6]
        self.base = base_of(self.tag)
        self.name = node_name(self.tag)
        self.certs = make_certificates(self.base / "certs")
        self._lock: IO[bytes] | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None

    def url(self, host: str = SERVER_NAME) -> str:
        """``amqps://`` to the node's default vhost as guest (who may log in from loopback)."""
        return f"amqps://guest:guest@{host}:{TLS_PORT}/"

    def start(self) -> None:
        """Start the node and wait until it serves; fail with its log tail if it does not."""
        self._take_ports()
        self._reaper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.tls_node",
                "reap",
                str(os.getpid()),
                self.tag,
            ],
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._spawn()
            self._wait_for_listener()
            run_ctl(self.name, "await_startup", timeout=START_TIMEOUT_S)
        except (subprocess.SubprocessError, OSError, TimeoutError) as err:
            raise AssertionError(
                f"TLS node {self.name} did not start: {err}\n{self.log_tail()}"
            ) from err

    def _wait_for_listener(self) -> None:
        """Until the TLS port accepts connections; at once if the server process ends
        (a bad config ends it within seconds: its words are in ``server.out``)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"127.0.0.1:{TLS_PORT}"):
            assert self._server is not None
            if self._server.poll() is not None:
                raise OSError(f"rabbitmq-server exited with {self._server.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {TLS_PORT} not listening after {START_TIMEOUT_S} s")
            time.sleep(0.5)

    def _take_ports(self) -> None:
        """Wait for the lock (another run's node), then check nobody else holds the ports."""
        lock = LOCK.open("ab")
        deadline = time.monotonic() + PORTS_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise AssertionError(
                        f"{LOCK} held by another run for {PORTS_WAIT_S} s"
                    ) from None
                time.sleep(2)
        self._lock = lock
        busy = [port for port in (TLS_PORT, DIST_PORT) if not _free(port)]
        if busy:
            raise AssertionError(f"ports {busy} are in use: cannot start the TLS node")

    def _spawn(self) -> None:
        for sub in ("log", "mnesia"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        config = self.base / "rabbitmq.conf"
        config.write_text(node_config(self.certs))
        node_host.hand_over(self.base)
        seen = node_host.inside(self.base)
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(TLS_PORT - 1),
            "RABBITMQ_DIST_PORT": str(DIST_PORT),
            "RABBITMQ_CONFIG_FILE": str(seen / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(seen / "mnesia"),
            "RABBITMQ_LOG_BASE": str(seen / "log"),
            "RABBITMQ_PID_FILE": str(seen / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(seen / "enabled_plugins"),
        }
        with (self.base / "server.out").open("wb") as out:
            self._server = subprocess.Popen(
                node_host.command("rabbitmq-server"),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the node's own log, for a failing test's report."""
        found = [self.base / "server.out", *sorted((self.base / "log").glob("*.log"))]
        text = "".join(path.read_text(errors="replace") for path in found if path.exists())
        return "\n".join(text.splitlines()[-lines:]) or "(the node wrote no log)"

    def close(self) -> None:
        """Stop the node, kill it if it does not stop, remove its files. Never raises."""
        stop(self.tag)
        if self._server is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._server.kill()
                self._server.wait(10)
        if self._reaper is not None and self._reaper.poll() is None:
            self._reaper.kill()
            self._reaper.wait(10)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def base_of(tag: str) -> Path:
    """The node's files, as the test process reaches them."""
    return node_host.outside(Path(f"/tmp/ricochet-tls-{tag}"))


def node_name(tag: str) -> str:
    return f"ricochet-tls-{tag}@{HOST}"


def stop(tag: str) -> None:
    name = node_name(tag)
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        run_ctl(name, "stop", timeout=60)
    for pid in _beam_pids((name,)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base_of(tag), ignore_errors=True)


@contextlib.contextmanager
def tls_node() -> Iterator[TlsNode]:
    """A started TLS node, stopped when the block ends, however it ends."""
    node = TlsNode()
    try:
        node.start()
        yield node
    finally:
        node.close()


def reap(parent: int, tag: str) -> None:
    """Run beside a test process: once it is gone, stop the node it left."""
    until_gone(parent)
    stop(tag)


if __name__ == "__main__" and sys.argv[1:2] == ["reap"]:
    reap(int(sys.argv[2]), sys.argv[3])
