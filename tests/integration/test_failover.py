"""Several broker addresses on the one test broker: a dead first address, and a fail-over.

The broker is reached under two names (``localhost`` and ``127.0.0.1``), so a
connection cut with ``rabbitmqctl`` must come back on the *other* address, with
its consumers (work queues, the stream) restored there. The real thing, a
node of a 3-node cluster stopped, is in ``test_failover_cluster.py``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from ricochet.engine import Status
from ricochet.errors import BrokerUnreachable
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.log.reader import LogFollower, stream_channel
from ricochet.workers.settings import Settings
from tests.broker import is_local
from tests.integration.harness import bind_target, eventually, log_events
from tests.integration.processes import WorkerProcess, fleet, rabbitmqctl, vhost_of

DEAD = "127.0.0.1:1"
"""Port 1: nothing listens there, so connecting is refused at once."""


def with_addresses(settings: Settings, first: str, *others: str) -> Settings:
    """``settings`` with its broker URL's host:port replaced by ``first``, then ``others``."""
    parts = urlsplit(settings.amqp_url)
    userinfo = parts.netloc.rpartition("@")[0]
    url = urlunsplit(parts._replace(netloc=f"{userinfo}@{first}"))
    return Settings.model_validate({**settings.model_dump(), "amqp_url": ",".join((url, *others))})


def other_name(settings: Settings) -> tuple[str, str]:
    """The test broker under two names, as ``host:port`` each."""
    assert is_local(settings.amqp_url), "these tests cut connections with rabbitmqctl"
    port = urlsplit(settings.amqp_url).port or 5672
    return f"localhost:{port}", f"127.0.0.1:{port}"


def logged(worker: WorkerProcess, event: str) -> list[dict[str, object]]:
    """The worker's structlog JSON lines for ``event``."""
    lines = (line for line in worker.text().splitlines() if f'"{event}"' in line)
    return [orjson.loads(line) for line in lines]


def node_of(client: Client) -> str:
    connection = client._connection
    assert isinstance(connection, FailoverConnection)
    return connection.address.node


async def test_a_dead_first_address_is_passed_over(settings: Settings, tmp_path: Path) -> None:
    """Worker and client start on the second address, say so, and work flows."""
    _, real = other_name(settings)
    listed = with_addresses(settings, DEAD, real)
    async with Client(listed) as client, fleet(listed, tmp_path) as workers:
        await bind_target(settings, "p.quick")
        worker = await workers.start()
        assert node_of(client) == real
        handle = await client.submit("p.quick", [7])
        state = await handle.wait(timeout=30)
        assert state.status is Status.SUCCEEDED
        assert await handle.result() == 7
        failed = logged(worker, "broker.connect_failed")
        connected = logged(worker, "broker.connected")
    assert [(e["role"], e["node"], e["next_node"]) for e in failed] == [("worker", DEAD, real)]
    assert [(e["role"], e["node"], e["vhost"]) for e in connected] == [
        ("worker", real, vhost_of(settings))
    ]


async def test_a_cut_connection_fails_over_to_the_next_address(
    settings: Settings, tmp_path: Path
) -> None:
    """Cut every connection mid-attempt: worker and client come back on the other name, the
    running attempt is not declared lost (heartbeats went on), and new work runs."""
    first, second = other_name(settings)
    listed = with_addresses(settings, first, second)
    async with Client(listed) as client, fleet(listed, tmp_path) as workers:
        await bind_target(settings, "p.sleepy_once")
        await bind_target(settings, "p.quick")
        worker = await workers.start()
        running = await client.submit("p.sleepy_once", [4.0])
        await eventually(lambda: workers.runs(running.id), timeout=15, every=0.02)
        rabbitmqctl("close_all_connections", "--vhost", vhost_of(settings), "test: fail over")
        await eventually(lambda: len(logged(worker, "broker.connected")) == 2, timeout=30)
        await eventually(lambda: node_of(client) == second, timeout=30)
        after = await client.submit("p.quick", [1])
        assert (await after.wait(timeout=30)).status is Status.SUCCEEDED
        state = await running.wait(timeout=30)
        assert (state.status, state.cause) == (Status.SUCCEEDED, None)
        assert len(workers.runs(running.id)) == 1
        connected = logged(worker, "broker.connected")
        lost = logged(worker, "broker.disconnected")
    assert [(e["node"], e["reconnected"]) for e in connected] == [(first, False), (second, True)]
    assert {(e["node"], e["next_node"]) for e in lost} == {(first, second)}
    assert [(a.number, a.outcome, a.cause) for a in state.attempts] == [(1, "succeeded", None)]
    types = [event.type.split(".")[0] for event in await log_events(settings, running.id)]
    assert "attempt_failed" not in types, "a cut connection must not make a live attempt lost"


async def test_start_fails_once_every_address_failed_naming_each(settings: Settings) -> None:
    """Tried in order, each once, then an error that names every address and its error."""
    dead = with_addresses(settings, DEAD, "127.0.0.1:2", "127.0.0.1:3")
    with pytest.raises(BrokerUnreachable) as raised:
        await connect(dead, "test")
    message = str(raised.value)
    assert [message.index(f"port {port}, vhost") for port in (1, 2, 3)] == sorted(
        message.index(f"port {port}, vhost") for port in (1, 2, 3)
    )
    assert message.count("connection refused") == 3


class CountingFollower(LogFollower):
    """A log follower that also notes every delivery's offset, repeats included."""

    delivered: list[int]

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.delivered.append(int(message.headers.get("x-stream-offset", -1)))  # type: ignore[arg-type]
        await super()._on_message(message)


async def test_a_stream_consumer_resumes_on_the_next_address_without_replaying(
    settings: Settings,
) -> None:
    """Restored on the other address, a stream consumer started at "first" goes on after
    the last offset it saw (its arguments were updated in place), not from the start."""
    first, second = other_name(settings)
    listed = with_addresses(settings, first, second)
    async with Client(listed) as client:
        await bind_target(settings, "p.quick")
        connection = await connect(listed, "test")
        try:
            assert isinstance(connection, FailoverConnection)
            entries: list[int] = []
            follower = CountingFollower(
                await stream_channel(connection), Names(listed.namespace), lambda e: None
            )
            follower.delivered = entries
            await follower.start("first")
            for i in range(3):
                await client.submit("p.quick", [i])
            await eventually(lambda: len(entries) >= 3)
            seen = len(entries)
            rabbitmqctl("close_all_connections", "--vhost", vhost_of(settings), "test: resume")
            await eventually(
                lambda: connection.address.node == second and connection.connected.is_set()
            )
            for i in range(3):
                await client.submit("p.quick", [i])
            await eventually(lambda: len(entries) >= seen + 3)
        finally:
            await connection.close()
    assert entries == sorted(set(entries)), f"no offset delivered twice: {entries}"
