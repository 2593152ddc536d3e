"""Writes the broker confirmed and the log does not have (SPEC 7.1, 7.8).

RabbitMQ 3.10 can confirm a stream write and then lose it when the stream's
leader node stops (rabbitmq-server#9457). The same fault is made here on one
broker, on cue: the log's exchange is bound to a queue of its own instead of
the stream for a while, so writes are routed, confirmed, and never on the log.
A worker must notice what the log lost and publish it again: a lost start must
not leave its attempt unrun, a lost outcome must not make a live attempt look
lost, and nothing may run twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aio_pika
from aiormq.abc import FieldValue

from ricochet import current_attempt, task
from ricochet.contracts import ATTEMPT_HEADER, DUE_AT_HEADER, REQUESTED_AT_HEADER, WorkMessage
from ricochet.contracts import encode as encode_work
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import eventually, log_events, record_opening, running_worker

SLOW_RUNS: dict[str, int] = {}


@task(name="t.lost_writes.slow")
async def slow() -> str:
    """Runs long enough for its outcome to be written while the log is cut off."""
    context = current_attempt()
    assert context is not None
    SLOW_RUNS[context.execution_id] = SLOW_RUNS.get(context.execution_id, 0) + 1
    await asyncio.sleep(1.0)
    return "done"


@asynccontextmanager
async def log_cut_off(settings: Settings) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """While open, every write to the log is confirmed and lands in a queue of its own,
    not on the stream; yields that queue. The stream is bound again whatever happens."""
    names = Names(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(names.events)
        stream = await channel.get_queue(names.events)
        lost = await channel.declare_queue(f"{settings.namespace}.lost-writes", durable=True)
        await lost.bind(exchange, routing_key="")
        await stream.unbind(exchange, routing_key="")  # as bound (``amqp.topology``)
        try:
            yield lost
        finally:
            await stream.bind(exchange, routing_key="")
            await lost.unbind(exchange, routing_key="")
    finally:
        await connection.close()


async def writes_lost(queue: aio_pika.abc.AbstractQueue) -> int:
    declared = await queue.channel.declare_queue(queue.name, passive=True)
    assert declared.declaration_result.message_count is not None
    return declared.declaration_result.message_count


async def ended(settings: Settings, ids: list[str], kind: str) -> bool:
    events = await log_events(settings)
    return set(ids) <= {event.execution_id for event in events if event.type.startswith(kind)}


async def test_outcomes_the_log_lost_are_published_again_and_no_attempt_looks_lost(
    settings: Settings, client: Client
) -> None:
    """Given four attempts running while the log is cut off, when their successes are
    confirmed and lost, then each worker publishes its outcome again and vouches for its
    attempt until the log shows it: all four succeed, once, and none is declared lost
    (within the 2 s loss window they would have been, had the worker stopped vouching)."""
    settings = settings.model_copy(update={"heartbeat_s": 0.5, "loss_window_s": 2.0})
    async with running_worker(settings, [slow]):
        ids = [(await client.submit(slow.name)).id for _ in range(4)]

        async def all_started() -> bool:
            events = await log_events(settings)
            return 4 == sum(1 for e in events if e.type.startswith("attempt_started"))

        await eventually(all_started, timeout=15)
        async with log_cut_off(settings) as lost:
            await eventually(lambda: all(SLOW_RUNS.get(i) == 1 for i in ids), timeout=10)
            await eventually(lambda: writes_lost(lost), timeout=10)
            await asyncio.sleep(3.0)  # past the loss window
        await eventually(lambda: ended(settings, ids, "execution_succeeded"), timeout=30)
    events = await log_events(settings)
    assert [] == [e for e in events if e.type.startswith(("attempt_failed", "execution_failed"))]
    assert all(SLOW_RUNS[i] == 1 for i in ids)


def work_message(execution_id: str) -> aio_pika.Message:
    now_ms = round(datetime.now(UTC).timestamp() * 1000)
    body = encode_work(
        WorkMessage(execution_id=execution_id, target="t.counted", args=(), kwargs={})
    )
    headers: dict[str, FieldValue] = {
        ATTEMPT_HEADER: 1,
        REQUESTED_AT_HEADER: now_ms,
        DUE_AT_HEADER: now_ms,
    }
    return aio_pika.Message(
        body,
        headers=headers,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=uuid.uuid4().hex,
    )


async def publish_work(settings: Settings, execution_ids: list[str]) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(settings.namespace).work)
        for execution_id in execution_ids:
            await exchange.publish(work_message(execution_id), routing_key="t.counted")
    finally:
        await connection.close()


async def test_starts_the_log_lost_are_claimed_again_once_a_later_write_proves_it(
    settings: Settings, client: Client
) -> None:
    """Given three starts confirmed while the log was cut off, when a later start of the
    same worker reaches the log, then the three are proved lost and claimed again (same
    claims): every body runs once. Without it, they would wait a minute and not run."""
    async with running_worker(settings, tasks.ALL) as worker:
        cut = [uuid.uuid4().hex for _ in range(3)]
        later = uuid.uuid4().hex
        for execution_id in [*cut, later]:
            await record_opening(settings, execution_id)
        async with log_cut_off(settings) as lost:
            await publish_work(settings, cut)
            await eventually(lambda: writes_lost(lost), timeout=10)
            await asyncio.sleep(0.5)
        await publish_work(settings, [later])
        await eventually(lambda: ended(settings, [*cut, later], "attempt_succeeded"), timeout=20)
        assert worker._witness.lost >= 1, "the later start must have proved the others lost"
    assert all(1 == tasks.RUNS[(i, 1)] for i in [*cut, later])
