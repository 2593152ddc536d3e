"""Supervision that keeps up: concurrent trigger intake, and take-over from a checkpoint.

SPEC section 8: triggers are taken many at a time with keys decided in arrival
order; a supervisor that takes over loads the latest checkpoint and reads only
the log after it; a checkpoint that cannot be read is never trusted.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import aio_pika
import orjson
import pytest

from ricochet.contracts import ExecutionRequested
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.log.history import read_entries
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings
from ricochet.workers.supervision.checkpoint_log import LOOK_BACK
from tests.integration import tasks
from tests.integration.harness import eventually, log_events, running_worker
from tests.integration.processes import Fleet, fleet
from tests.integration.test_unreadable import overflowing_message, publish_raw


async def publish_triggers(settings: Settings, bodies: list[bytes], target: str) -> None:
    """What another service does: JSON triggers, confirmed, many in flight at once."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(settings.namespace).triggers)
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=target,
                )
                for body in bodies
            )
        )
    finally:
        await connection.close()


def keyed(target: str, keys: list[str]) -> list[bytes]:
    return [
        orjson.dumps({"target": target, "args": [i], "idempotency_key": k})
        for i, k in enumerate(keys)
    ]


async def test_triggers_are_taken_together_and_share_stream_messages(
    settings: Settings, client: Client
) -> None:
    """Given 300 triggers published at once, when the intake takes them, then their
    requests share group-commit messages (one trigger at a time would write 300)."""
    bodies = [orjson.dumps({"target": "t.ok", "args": [i]}) for i in range(300)]
    async with running_worker(settings, tasks.ALL) as worker:
        assert worker.supervisor is not None
        await worker.supervisor.caught_up.wait()
        await publish_triggers(settings, bodies, "t.ok")

        async def all_requested() -> bool:
            events = await log_events(settings)
            return 300 == sum(isinstance(e, ExecutionRequested) for e in events)

        await eventually(all_requested, timeout=60, every=0.5)
    entries = await read_entries(settings)
    carrying = [e for e in entries if any(isinstance(x, ExecutionRequested) for x in e.events)]
    assert len(carrying) <= 150, f"{len(carrying)} messages for 300 requests"


def supervisor_of(workers: Fleet) -> int:
    """The pid of the worker whose supervisor is active now (the last to say so)."""
    active = [
        w
        for w in workers.workers
        if w.process.poll() is None and "supervisor.caught_up" in w.text()
    ]
    assert active, "no supervisor caught up"
    return active[-1].pid


async def test_a_supervisor_killed_in_a_keyed_burst_starts_each_key_once(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """2,000 keyed triggers with 10% duplicates stream in; the active supervisor's worker
    is SIGKILLed half-way. Every key starts exactly one execution, whose body runs once."""
    distinct = [f"order-{i}" for i in range(1800)]
    keys = distinct + distinct[::9][:200]
    bodies = keyed("p.quick", keys)
    async with fleet(settings, tmp_path) as workers:
        await workers.start()
        await workers.start()
        await eventually(lambda: any("supervisor.caught_up" in w.text() for w in workers.workers))
        victim = next(w for w in workers.workers if w.pid == supervisor_of(workers))
        await publish_triggers(settings, bodies[:1000], "p.quick")
        victim.signal(signal.SIGKILL)
        await publish_triggers(settings, bodies[1000:], "p.quick")

        async def every_key_requested() -> bool:
            events = await log_events(settings)
            return len(distinct) == len(
                {e.idempotency_key for e in events if isinstance(e, ExecutionRequested)}
            )

        await eventually(every_key_requested, timeout=120, every=1.0)
        await asyncio.sleep(5.0)  # let redelivered duplicates and stragglers land
    events = await log_events(settings)
    requests = Counter(e.idempotency_key for e in events if isinstance(e, ExecutionRequested))
    assert set(distinct) == set(requests)
    assert {1} == set(requests.values()), [k for k, n in requests.items() if n > 1][:5]
    starts = Counter(e.execution_id for e in events if e.type == "attempt_started.v2")
    assert all(n == 1 for n in starts.values())


async def take_over(settings: Settings) -> Worker:
    """A fresh worker whose supervisor is active and caught up."""
    worker = Worker(settings, tasks.ALL)
    await worker.start()
    assert worker.supervisor is not None
    await asyncio.wait_for(worker.supervisor.caught_up.wait(), 30)
    return worker


async def run_keyed_and_checkpoint(settings: Settings, client: Client, key: str) -> int:
    """One keyed execution run to its end, then a checkpoint; returns its offset."""
    async with running_worker(settings, tasks.ALL) as worker:
        assert worker.supervisor is not None
        await worker.supervisor.caught_up.wait()
        handle = await client.submit("t.ok", [1], idempotency_key=key)
        await handle.wait(timeout=30)
        supervisor = worker.supervisor
        await eventually(lambda: supervisor.last_checkpoint is not None, timeout=30)
        offset = supervisor.last_checkpoint
        assert offset is not None
        return offset


@pytest.fixture
def checkpoint_often(settings: Settings) -> Settings:
    return settings.model_copy(update={"checkpoint_s": 0.2})


async def test_take_over_starts_from_the_checkpoint_and_keeps_the_keys(
    checkpoint_often: Settings, client: Client
) -> None:
    """Given a supervisor that checkpointed after a keyed execution, when another takes
    over, then it starts reading the log after that checkpoint, and the key still
    blocks a second execution."""
    settings = checkpoint_often
    key = f"ck-{os.urandom(4).hex()}"
    offset = await run_keyed_and_checkpoint(settings, client, key)
    worker = await take_over(settings)
    try:
        assert worker.supervisor is not None
        assert offset == worker.supervisor.resumed_from
        first = worker.supervisor.first_offset_read
        assert first is None or first > offset, f"read from {first}, checkpoint at {offset}"
        assert worker.supervisor.intake.knows(key)
        again = await client.submit("t.ok", [1], idempotency_key=key)
        await again.wait(timeout=30)
    finally:
        await worker.stop(grace_s=5)
    requests = [e for e in await log_events(settings) if isinstance(e, ExecutionRequested)]
    assert 1 == len(requests)


async def publish_to_queue(settings: Settings, queue: str, body: bytes) -> None:
    """``body`` straight into one of Ricochet's queues, as anyone allowed to could."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, queue)
    finally:
        await connection.close()


async def publish_checkpoint_body(settings: Settings, body: bytes) -> None:
    await publish_to_queue(settings, Names(settings.namespace).checkpoints, body)


@pytest.mark.parametrize(
    "garbage",
    [
        b"{not json",
        b'{"type":"supervisor_checkpoint.v1","offset":99999,"at":"0001-01-01T00:00:00+01:00"}',
    ],
)
async def test_an_unreadable_newest_checkpoint_falls_back_to_an_earlier_one(
    checkpoint_often: Settings, client: Client, garbage: bytes
) -> None:
    """Given a readable checkpoint and then garbage as the newest one, the next supervisor
    takes over from the readable one: the garbage is never trusted half-way."""
    settings = checkpoint_often
    key = f"fb-{os.urandom(4).hex()}"
    offset = await run_keyed_and_checkpoint(settings, client, key)
    await publish_checkpoint_body(settings, garbage)
    worker = await take_over(settings)
    try:
        assert worker.supervisor is not None
        assert offset == worker.supervisor.resumed_from
        assert worker.supervisor.intake.knows(key)
    finally:
        await worker.stop(grace_s=5)


async def only_garbage_checkpoints(settings: Settings) -> None:
    """Bury every readable checkpoint under more unreadable ones than a reader looks back
    over. (Deleting a stream in use and declaring it again made the broker restart the
    whole vhost now and then, failing every test after it.)"""
    for _ in range(LOOK_BACK + 4):
        await publish_checkpoint_body(settings, b"\xff\xfe not a checkpoint")


async def test_with_no_readable_checkpoint_the_log_is_read_from_the_start(
    checkpoint_often: Settings, client: Client
) -> None:
    """Given only an unreadable checkpoint, the next supervisor reads the whole log, and
    still knows every key in it."""
    settings = checkpoint_often
    key = f"nock-{os.urandom(4).hex()}"
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.ok", [1], idempotency_key=key)
        await handle.wait(timeout=30)
    await only_garbage_checkpoints(settings)
    worker = await take_over(settings)
    try:
        assert worker.supervisor is not None
        assert worker.supervisor.resumed_from is None
        assert worker.supervisor.intake.knows(key)
    finally:
        await worker.stop(grace_s=5)


async def test_an_unreadable_last_message_does_not_blind_a_new_supervisor(
    settings: Settings, client: Client
) -> None:
    """Given a keyed execution and then an unreadable message as the last on the stream,
    when a supervisor takes over (from the log), it catches up past the bad message,
    still knows the key, and a repeated trigger starts nothing."""
    key = f"blind-{os.urandom(4).hex()}"
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.ok", [2], idempotency_key=key)
        await handle.wait(timeout=30)
    await only_garbage_checkpoints(settings)
    await publish_raw(settings, overflowing_message())
    await publish_raw(settings, b"\x00 not json at all")
    worker = await take_over(settings)
    try:
        assert worker.supervisor is not None
        assert worker.supervisor.intake.knows(key)
        assert worker.supervisor.unreadable >= 1
        await publish_triggers(settings, keyed("t.ok", [key]), "t.ok")
        await asyncio.sleep(2.0)
    finally:
        await worker.stop(grace_s=5)
    requests = [e for e in await log_events(settings) if isinstance(e, ExecutionRequested)]
    assert 1 == len(requests)


async def publish_heartbeat(settings: Settings, body: bytes) -> None:
    await publish_to_queue(settings, Names(settings.namespace).supervisor, body)


def heartbeat_of(worker: str, running: int = 0) -> bytes:
    listed = [{"execution_id": f"{i:032x}", "attempt": 1} for i in range(running)]
    return orjson.dumps(
        {"type": "heartbeat.v1", "worker": worker, "at": "2026-11-29T00:00:00Z", "running": listed}
    )


async def test_heartbeats_over_the_limit_are_refused_and_quiet_workers_forgotten(
    settings: Settings,
) -> None:
    """Given an active supervisor, an oversized heartbeat is refused (never decoded) and
    the supervisor goes on; 50 fake workers that then fall silent are forgotten after a
    few loss windows, so the table holds the workers alive now."""
    fast = settings.model_copy(update={"heartbeat_s": 0.2, "loss_window_s": 0.6})
    async with running_worker(fast, tasks.ALL) as worker:
        supervisor = worker.supervisor
        assert supervisor is not None
        await supervisor.caught_up.wait()
        await publish_heartbeat(fast, heartbeat_of("huge:1", running=40_000))
        for index in range(50):
            await publish_heartbeat(fast, heartbeat_of(f"fake:{index}"))
        await eventually(lambda: "fake:49" in supervisor.workers_seen, timeout=10)
        assert "huge:1" not in supervisor.workers_seen
        assert 1 <= supervisor.heartbeats_refused
        await eventually(lambda: set(supervisor.workers_seen) == {fast.worker_id}, timeout=10)
