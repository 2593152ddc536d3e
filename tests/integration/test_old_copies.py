"""Copies of work that already ran, however old and whatever their headers say (SPEC 7.11).

A copy is judged by what the log says of its attempt, never by a time the
message carries: exact copies published long after the originals ran (past
every memory of them), and copies with fresh request times sent to a worker that
started after the originals ran, run nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import DUE_AT_HEADER, REASON_HEADER, REQUESTED_AT_HEADER
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import bind_target, dead_letters, eventually, running_worker

pytestmark = pytest.mark.broker

TARGET = "t.counted_once"
RUNS_BEFORE = 6
SENDER_AHEAD_MS = 60_000


async def tap(settings: Settings) -> str:
    """A queue of our own bound like the work queue: it keeps an exact copy of every work
    message published for ``TARGET`` (body, headers, timestamp, message id)."""
    name = f"{settings.namespace}.tap.{uuid.uuid4().hex[:6]}"
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True, auto_delete=False)
        await queue.bind(Names(settings.namespace).work, routing_key=TARGET)
    finally:
        await connection.close()
    return name


async def tapped(settings: Settings, name: str, count: int) -> list[AbstractIncomingMessage]:
    connection = await aio_pika.connect(settings.amqp_url)
    taken: list[AbstractIncomingMessage] = []
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(name, ensure=False)
        while len(taken) < count:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
            else:
                taken.append(message)
        await channel.queue_delete(name)
    finally:
        await connection.close()
    return taken


async def publish_again(
    settings: Settings, originals: list[AbstractIncomingMessage], fresh: bool
) -> None:
    """Publish each original again: exactly, or with fresh request, due and publish times
    (from a sender whose clock runs a minute ahead: a header it controls)."""
    now_ms = round(datetime.now(UTC).timestamp() * 1000) + SENDER_AHEAD_MS
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(settings.namespace).work)
        for original in originals:
            headers: dict[str, Any] = dict(original.headers or {})
            timestamp = original.timestamp
            if fresh:
                headers |= {REQUESTED_AT_HEADER: now_ms, DUE_AT_HEADER: now_ms}
                timestamp = datetime.now(UTC)
            copy = aio_pika.Message(
                original.body,
                headers=headers,
                content_type=original.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=original.message_id,
                timestamp=timestamp,
            )
            await exchange.publish(copy, routing_key=TARGET)
    finally:
        await connection.close()


async def work_queue_empty(settings: Settings) -> bool:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        name = Names(settings.namespace).work_queue("default")
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count == 0
    finally:
        await connection.close()


async def run_originals(settings: Settings, client: Client, count: int) -> list[str]:
    handles = [await client.submit(TARGET) for _ in range(count)]
    for handle in handles:
        await handle.wait(timeout=30)
    return [handle.id for handle in handles]


async def test_exact_copies_published_after_every_memory_of_them_run_nothing(
    settings: Settings, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 6 retries=0 executions that ran, and a worker whose memory of endings holds
    one (the rest forgotten), when exact copies of their work messages are published,
    then no body runs again; the forgotten ones are dead-lettered with the reason."""
    monkeypatch.setattr("ricochet.engine.claims.ENDED_MEMORY", 1)
    await bind_target(settings, TARGET)
    tap_name = await tap(settings)
    async with running_worker(settings, tasks.ALL):
        ids = await run_originals(settings, client, RUNS_BEFORE)
        originals = await tapped(settings, tap_name, RUNS_BEFORE)
        await run_originals(settings, client, 3)  # traffic: the endings roll over

        await publish_again(settings, originals, fresh=False)

        parked = await dead_letters(settings, RUNS_BEFORE, timeout=30)
        await asyncio.sleep(1.0)  # let any copy that would run get there
    assert [1] * RUNS_BEFORE == [tasks.RUNS[(execution_id, 1)] for execution_id in ids]
    reasons = {str((m.headers or {}).get(REASON_HEADER)) for m in parked}
    assert len(parked) == RUNS_BEFORE
    assert all("no open attempt" in reason for reason in reasons)


async def test_fresh_request_times_on_copies_to_a_new_worker_run_nothing(
    settings: Settings, client: Client
) -> None:
    """Given 6 retries=0 executions run by a worker that then stopped, when a worker that
    started after them gets copies claiming to be requested and due just now, then no
    body runs again (the copies are acked: the new worker's book knows they ended)."""
    await bind_target(settings, TARGET)
    tap_name = await tap(settings)
    async with running_worker(settings, tasks.ALL):
        ids = await run_originals(settings, client, RUNS_BEFORE)
    originals = await tapped(settings, tap_name, RUNS_BEFORE)
    second = settings.model_copy(update={"worker_id": "started-later:2"})
    async with running_worker(second, tasks.ALL):
        await publish_again(settings, originals, fresh=True)
        await eventually(lambda: work_queue_empty(settings), timeout=30)
        await asyncio.sleep(2.0)  # let any copy taken get as far as it would
    assert [1] * RUNS_BEFORE == [tasks.RUNS[(execution_id, 1)] for execution_id in ids]
