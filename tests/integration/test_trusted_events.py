"""Trusted events (issue 13 item 2): with ``event_writers`` set, a message on the log
from any other RabbitMQ user is not believed by any reader.

The rogue is a real RabbitMQ user allowed to write to the namespace's events
exchange (a misconfigured permission); the honest processes log in as guest. The
task waits for the test to release it, so the forged success always lands while the
real attempt is running, however slow the machine.
"""

from __future__ import annotations

import asyncio
import os

import aio_pika
import orjson
import pytest
from aiormq.exceptions import ChannelPreconditionFailed

from ricochet import task
from ricochet.engine import Status
from ricochet.engine.trust import MISSING_USER_ID, NOT_A_WRITER
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.topology import Names
from ricochet.workers.amqp.trust import connection_gate
from ricochet.workers.client.client import Client
from ricochet.workers.log.reader import tail_offset
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration.harness import declare_topology, eventually, running_worker
from tests.integration.observing import by_label, scrape
from tests.integration.rogue import Rogue, rogue
from tests.integration.test_cli import ricochet
from tests.integration.test_supervision import run_keyed_and_checkpoint, take_over

__all__ = ["rogue"]  # the fixture, used by name

REAL = "REAL-RESULT"
FORGED = "FORGED-RESULT"
_started = asyncio.Event()
_release = asyncio.Event()


@task(name="trust.held")
async def held() -> str:
    """Runs until the test lets it end."""
    _started.set()
    await _release.wait()
    return REAL


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """Only guest, the user every honest process of these tests logs in as, writes events."""
    return settings.model_copy(update={"event_writers": frozenset({"guest"}), "metrics_port": 0})


@pytest.fixture(autouse=True)
def _fresh_events() -> None:
    _started.clear()
    _release.clear()


async def last_offset(settings: Settings) -> int:
    connection = await connect(settings, "test")
    try:
        return await tail_offset(connection, Names(settings.namespace))
    finally:
        await connection.close()


async def stream_writers(settings: Settings) -> list[str | None]:
    """The ``user_id`` of every message on the event log, in order, read raw."""
    connection = await aio_pika.connect(settings.amqp_url)
    found: list[str | None] = []
    tail = await last_offset(settings)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(Names(settings.namespace).events, passive=True)

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            found.append(message.user_id)
            await message.ack()

        await queue.consume(keep, arguments={"x-stream-offset": "first"})
        await eventually(lambda: len(found) >= tail + 1, timeout=30)
    finally:
        await connection.close()
    return found


def untrusted_lines(stderr: str) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "event.untrusted"]


def projected(projector: Projector, execution_id: str) -> tuple[Status, object]:
    state = projector.projection.get(execution_id)
    assert state is not None
    return state.status, state.result


async def test_a_forged_success_ends_nothing_and_is_reported(
    strict: Settings, rogue: Rogue
) -> None:
    """Given a worker, a client waiting and a projector that trust only guest,
    when the rogue publishes execution_succeeded for the running execution,
    then nobody believes it: the wait goes on until the real attempt ends with its real
    result, the projector shows it running then succeeded with the real result, replay
    and status do not show the forgery; it is counted and logged once per process."""
    await declare_topology(strict)  # a projector only reads: the deploy declares
    projector = Projector(strict)
    await projector.start()
    try:
        async with Client(strict) as client, running_worker(strict, [held]) as worker:
            handle = await client.submit("trust.held")
            await asyncio.wait_for(_started.wait(), 30)

            await rogue.forge_success(handle.id, FORGED, user_id=rogue.name)
            forged = await last_offset(strict)
            await eventually(lambda: (projector.offset or -1) >= forged, timeout=30)

            # Then the forged success woke nobody and ended nothing
            with pytest.raises(TimeoutError):
                await handle.wait(timeout=1.0)
            gates = [connection_gate(c) for c in (client._connection, worker._connection)]
            await eventually(lambda: all(gate.dropped for gate in gates), timeout=30)
            assert Status.RUNNING == projected(projector, handle.id)[0]
            _release.set()
            assert REAL == await handle.result(timeout=30)
            done = (Status.SUCCEEDED, REAL)
            await eventually(lambda: projected(projector, handle.id) == done)

            # and it was counted once by each process, however many of its readers met it
            scraped = await scrape(f"http://127.0.0.1:{worker.metrics_port}/metrics")
            counted = by_label(scraped, "ricochet_untrusted_events_total", "stream", "reason")
            key = (Names(strict.namespace).events, NOT_A_WRITER)
            assert {key: 1} == counted
            assert {key: 1} == dict(projector.untrusted)
            assert [{key: 1}] * 2 == [dict(gate.dropped) for gate in gates]
    finally:
        await projector.stop()

    # When the rogue writes again, last on the log and naming no writer, and a person
    # replays and asks
    await rogue.forge_success(handle.id, FORGED, user_id=None)
    last = await last_offset(strict)
    code, out, err = await ricochet(strict, "replay", "--json", "--event-writers", "guest")
    status_code, shown, _ = await ricochet(
        strict, "status", handle.id, "--api", "", "--event-writers", "guest"
    )
    # Then they see the real history only, and a line for each forgery
    assert (0, 0) == (code, status_code)
    results = [e.get("result") for e in map(orjson.loads, out.splitlines())]
    assert REAL in results
    assert FORGED not in results
    assert FORGED not in shown
    assert "succeeded" in shown
    reported = sorted((x["offset"], x["user_id"], x["reason"]) for x in untrusted_lines(err))
    assert [(forged, rogue.name, NOT_A_WRITER), (last, None, MISSING_USER_ID)] == reported
    assert (
        f"offset {forged} (untrusted writer: {NOT_A_WRITER}); "
        f"offset {last} (untrusted writer: {MISSING_USER_ID})"
    ) in err, "the summary a person reads names both"


async def test_the_broker_refuses_a_user_id_that_is_not_the_publishers(
    settings: Settings, rogue: Rogue
) -> None:
    """Given the rogue, when it names guest as the writer of a message, then RabbitMQ
    refuses the publish (the channel closes with PRECONDITION_FAILED) and nothing of it
    reaches the log: user_id is proof of the writer."""
    async with Client(settings):  # declares the topology
        pass
    before = await last_offset(settings)

    with pytest.raises(ChannelPreconditionFailed) as refused:
        await rogue.forge_success("x" * 32, FORGED, user_id="guest")

    assert f"user_id property set to 'guest' but authenticated user was '{rogue.name}'" in str(
        refused.value
    )
    assert before == await last_offset(settings)


async def test_without_event_writers_every_message_is_believed_as_before(
    settings: Settings, rogue: Rogue
) -> None:
    """Given the default (no event_writers), when the rogue forges a success, then the
    waiting client believes it, as on main before this setting; and every message
    Ricochet wrote names its writer, guest."""
    async with Client(settings) as client, running_worker(settings, [held]):
        handle = await client.submit("trust.held")
        await asyncio.wait_for(_started.wait(), 30)

        await rogue.forge_success(handle.id, FORGED, user_id=None)

        assert FORGED == await handle.result(timeout=30)
        _release.set()
        await eventually(lambda: _release.is_set())
    writers = await stream_writers(settings)
    assert None in writers
    assert {"guest", None} == set(writers)
    assert writers.index(None) > 0  # Ricochet's request came first, with user_id guest


@pytest.mark.parametrize("writers", [frozenset({"guest"}), None])
async def test_a_forged_checkpoint_is_ignored_by_a_take_over(
    settings: Settings, rogue: Rogue, writers: frozenset[str] | None
) -> None:
    """Given a supervisor's real checkpoint and then the rogue's, newest, which says the
    log is read up to an offset far ahead with nothing live, when another supervisor
    that trusts only guest takes over, then it resumes from the real checkpoint and
    counts the forgery, which names no writer. (Without event_writers, the forgery is
    loaded: the control.)"""
    honest = settings.model_copy(update={"checkpoint_s": 0.2, "event_writers": writers})
    async with Client(honest) as client:
        real = await run_keyed_and_checkpoint(honest, client, f"ck-{os.urandom(4).hex()}")
    far = 10**9
    forged = {
        "type": "supervisor_checkpoint.v1",
        "offset": far,
        "at": "2026-01-01T00:00:00+00:00",
        "worker": "rogue",
        "live": {},
        "key_width_s": 60.0,
    }
    await rogue.publish(orjson.dumps(forged), checkpoint=True)

    worker = await take_over(honest)
    try:
        assert worker.supervisor is not None
        dropped = dict(connection_gate(worker._connection).dropped)
        if writers:
            # the real one, or a later real one the first worker wrote while stopping
            resumed = worker.supervisor.resumed_from
            assert resumed is not None
            assert real <= resumed < far
            assert {(Names(honest.namespace).checkpoints, MISSING_USER_ID): 1} == dropped
        else:
            assert far == worker.supervisor.resumed_from
            assert {} == dropped
    finally:
        await worker.stop(grace_s=5)
