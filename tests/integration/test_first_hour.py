"""The first hour with a broker that cannot be reached (issue 11, item 3).

Every command says in one line which URL (without its password), host, port and
vhost it could not reach and why, and exits 2; a ``Client`` raises
``BrokerUnreachable`` with the same line; a worker started before its broker is
reachable keeps trying, says so, and runs work once the broker answers.

The broker "comes up" through a TCP port of this test: bound but not listening
(so connecting is refused), then listening and forwarding to the real broker.
That works with any broker, local or not, and needs no restart of anyone's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson
import pytest

from ricochet.errors import BrokerUnreachable
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import eventually, run_cli
from tests.integration.processes import WorkerProcess

SECRET = f"s3cret-{uuid.uuid4().hex[:8]}"
"""A password that must never be printed."""

COMMANDS = {
    "submit": ("submit", "t.ok", "--kwargs", '{"x": 1}'),
    "worker": ("worker", "tests.integration.tasks", "--startup-wait", "0"),
    "status": ("status", "0" * 32, "--api", ""),
    "replay": ("replay",),
    "executions": ("executions", "--api", ""),
}


def url_with(
    settings: Settings,
    *,
    password: str | None = None,
    port: int | None = None,
    host: str | None = None,
    vhost: str | None = None,
    scheme: str | None = None,
) -> str:
    """The test broker's URL with some parts replaced."""
    parts = urlsplit(settings.amqp_url)
    user = parts.username or "guest"
    secret = parts.password if password is None else password
    netloc = f"{user}:{secret}@{host or parts.hostname}:{port or parts.port or 5672}"
    path = parts.path if vhost is None else "/" + quote(vhost, safe="")
    return urlunsplit(parts._replace(scheme=scheme or parts.scheme, netloc=netloc, path=path))


def vhost_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/")) or "/"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound by this test and not listening: connecting to it is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a firewall that drops)."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield listening.getsockname()[1]


async def ricochet(url: str, namespace: str, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI as a user would; returns the exit code and stderr."""
    env = {**os.environ, "RICOCHET_AMQP_URL": url, "RICOCHET_NAMESPACE": namespace}
    code, _, err = await run_cli(env, *args, timeout=timeout)
    return code, err


def broken_urls(settings: Settings, closed_port: int) -> dict[str, tuple[str, str, str]]:
    """Per fault: the URL, the cause in words the error must give, the password not to show."""
    real_password = urlsplit(settings.amqp_url).password or "guest"
    missing = f"ricochet-missing-{uuid.uuid4().hex[:8]}"
    return {
        "closed port": (
            url_with(settings, password=SECRET, host="127.0.0.1", port=closed_port),
            "connection refused",
            SECRET,
        ),
        "wrong password": (url_with(settings, password=SECRET), "login refused for user", SECRET),
        "missing vhost": (
            url_with(settings, vhost=missing),
            f'vhost "{missing}" does not exist',
            real_password,
        ),
    }


def assert_one_line_naming(stderr: str, url: str, cause: str, password: str) -> None:
    parts = urlsplit(url)
    lines = stderr.splitlines()
    assert 1 == len(lines), stderr
    line = lines[0]
    assert line.startswith("error: cannot connect to "), line
    for named in (f"host {parts.hostname}", f"port {parts.port}", f'vhost "{vhost_of(url)}"'):
        assert named in line, (named, line)
    assert cause in line
    assert f":{password}@" not in line
    if password == SECRET:
        assert SECRET not in line


@pytest.mark.parametrize("fault", ["closed port", "wrong password", "missing vhost"])
async def test_every_command_says_in_one_line_which_broker_it_cannot_reach(
    settings: Settings, closed_port: int, fault: str
) -> None:
    """Given a broker URL with a closed port, a wrong password or a missing vhost,
    when submit, worker, status, replay and executions run with it,
    then each prints exactly one stderr line naming host, port and vhost and the cause,
    never the password, and exits 2."""
    url, cause, password = broken_urls(settings, closed_port)[fault]

    results = await asyncio.gather(
        *(ricochet(url, settings.namespace, *args) for args in COMMANDS.values())
    )

    for name, (code, stderr) in zip(COMMANDS, results, strict=True):
        assert (name, 2) == (name, code), stderr
        assert_one_line_naming(stderr, url, cause, password)


async def test_a_client_raises_broker_unreachable_with_the_same_line(
    settings: Settings, closed_port: int
) -> None:
    """``async with Client(settings)`` against a closed port raises ``BrokerUnreachable``."""
    url = url_with(settings, password=SECRET, host="127.0.0.1", port=closed_port)
    unreachable = Settings.model_validate({**settings.model_dump(), "amqp_url": url})

    with pytest.raises(BrokerUnreachable) as raised:
        async with Client(unreachable):
            pass

    message = str(raised.value)
    assert message.startswith(f"cannot connect to {broker_shown(url)} ")
    assert f'(host 127.0.0.1, port {closed_port}, vhost "{vhost_of(url)}")' in message
    assert message.endswith(f"listening on port {closed_port}?)")
    assert SECRET not in message
    assert "\n" not in message


async def test_several_addresses_are_each_named_with_their_cause(
    settings: Settings, closed_port: int
) -> None:
    """Two addresses, both failing differently: one line, each address with its own cause."""
    first = url_with(settings, password=SECRET, host="127.0.0.1", port=closed_port)
    url = f"{first},nosuchhost.invalid:5672"
    unreachable = Settings.model_validate({**settings.model_dump(), "amqp_url": url})

    with pytest.raises(BrokerUnreachable) as raised:
        await connect(unreachable, "test")

    message = str(raised.value)
    assert message.startswith("cannot connect to any of 2 broker addresses: ")
    refused, unknown = message.split("; ")
    assert f"port {closed_port}" in refused
    assert "connection refused" in refused
    assert "host nosuchhost.invalid, port 5672" in unknown
    assert 'host name "nosuchhost.invalid" not found' in unknown
    assert SECRET not in message
    refused_cause, unknown_cause = raised.value.causes
    assert refused_cause.startswith("connection refused")
    assert unknown_cause.startswith('host name "nosuchhost.invalid" not found')


async def test_with_several_addresses_a_command_still_prints_one_line(
    settings: Settings, closed_port: int
) -> None:
    """The addresses passed over are logged only once another one answers: when none
    does, the error names them all, and a line per address ahead of it would repeat it."""
    first = url_with(settings, password=SECRET, host="127.0.0.1", port=closed_port)

    code, stderr = await ricochet(f"{first},nosuchhost.invalid:5672", settings.namespace, "replay")

    assert (2, 1) == (code, len(stderr.splitlines())), stderr
    assert stderr.startswith("error: cannot connect to any of 2 broker addresses: ")


async def test_a_silent_port_times_out_and_tls_to_a_plain_port_fails_its_handshake(
    settings: Settings, silent_port: int
) -> None:
    """The other causes: no answer within the connect timeout, and amqps:// to a port
    that does not speak TLS."""
    silent = url_with(settings, password=SECRET, host="127.0.0.1", port=silent_port)
    tls = url_with(settings, password=SECRET, scheme="amqps")
    causes: list[str] = []
    for url in (silent, tls):
        addresses = Settings(amqp_url=url).amqp_addresses
        connection = FailoverConnection(addresses, "test")
        with pytest.raises(BrokerUnreachable) as raised:
            await connection.connect(timeout=1)
        assert SECRET not in str(raised.value)
        causes.extend(raised.value.causes)

    timed_out, handshake = causes
    assert timed_out.startswith("timed out: no AMQP answer within 1 s")
    assert handshake.startswith("TLS handshake failed: ")


@pytest.mark.parametrize("command", ["worker", "projector"])
async def test_long_running_commands_wait_then_give_up_with_the_one_line(
    settings: Settings, closed_port: int, tmp_path: Path, command: str
) -> None:
    """Worker and projector with ``--startup-wait 1``: a warning per try (broker, vhost,
    cause, next try), then the one-line error, exit 2."""
    url = url_with(settings, password=SECRET, host="127.0.0.1", port=closed_port)
    args = {
        "worker": ("worker", "tests.integration.tasks"),
        "projector": ("projector", "--store", str(tmp_path / "store.sqlite3"), "--http", ""),
    }[command]

    code, stderr = await ricochet(url, settings.namespace, *args, "--startup-wait", "1")

    *waiting, last = stderr.splitlines()
    assert 2 == code
    assert last.startswith("error: cannot connect to ")
    assert last.endswith("gave up after 1 s of tries")
    tries = [orjson.loads(line) for line in waiting]
    assert len(tries) >= 2
    assert {"broker.waiting"} == {t["event"] for t in tries}
    assert {"warning"} == {t["level"] for t in tries}
    assert [n + 1 for n in range(len(tries))] == [t["tries"] for t in tries]
    first = tries[0]
    assert broker_shown(url) == first["broker"]
    assert vhost_of(url) == first["vhost"]
    assert first["cause"].startswith("connection refused")
    assert 0 < first["next_try_s"] <= 1
    assert SECRET not in stderr


class LateBroker:
    """A port that refuses connections until ``open``, then forwards them to the broker."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, sock=self._socket)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            _copy(reader, upstream_writer), _copy(upstream_reader, writer), return_exceptions=True
        )

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
        self._socket.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def late_broker(settings: Settings) -> AsyncIterator[LateBroker]:
    parts = urlsplit(settings.amqp_url)
    broker = LateBroker(parts.hostname or "localhost", parts.port or 5672)
    try:
        yield broker
    finally:
        await broker.close()


def logged(worker: WorkerProcess, event: str) -> list[dict[str, Any]]:
    lines = (line for line in worker.text().splitlines() if f'"{event}"' in line)
    return [orjson.loads(line) for line in lines]


async def test_a_worker_started_before_its_broker_waits_then_runs_work(
    settings: Settings, tmp_path: Path
) -> None:
    """Given a worker started while its broker refuses connections,
    when the broker becomes reachable,
    then the worker (which said it was waiting) connects, says where, and runs work."""
    async with late_broker(settings) as broker:
        via = url_with(settings, host="127.0.0.1", port=broker.port)
        waiting = Settings.model_validate({**settings.model_dump(), "amqp_url": via})
        markers = tmp_path / "markers"
        markers.mkdir()
        worker = WorkerProcess(waiting, markers, tmp_path / "worker.log")
        try:
            await eventually(lambda: logged(worker, "broker.waiting"), timeout=30, every=0.05)
            assert worker.process.poll() is None, worker.text()
            await broker.open()
            await worker.started(timeout=60)
            async with Client(settings) as client:
                handle = await client.submit("p.quick", [7])
                assert 7 == await handle.result(timeout=30)
        finally:
            worker.close()

    tries = logged(worker, "broker.waiting")
    started = logged(worker, "worker.started")
    assert tries[0]["cause"].startswith("connection refused")
    assert [broker_shown(via)] == [s["broker"] for s in started]
    assert [vhost_of(via)] == [s["vhost"] for s in started]
    assert [settings.namespace] == [s["namespace"] for s in started]
    assert "p.quick" in started[0]["targets"]
    assert f"{settings.namespace}.work.default" in started[0]["work_queues"]


def broker_shown(url: str) -> str:
    """What logs and errors show for ``url``: no password, no query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.username}@{parts.hostname}:{parts.port}{parts.path or '/'}"
