"""Replies for any language (issue 14): a trigger with ``reply_to`` gets how its execution ended.

The sender here uses plain aio-pika, as a service in another language would use
its own client: no Ricochet code on the receiving side either.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import REASON_HEADER, ReplySent, ReplyV1, decode
from ricochet.workers.client.client import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import dead_letters, eventually, log_events, running_worker


@asynccontextmanager
async def reply_queue(
    settings: Settings,
) -> AsyncIterator[tuple[str, asyncio.Queue[AbstractIncomingMessage]]]:
    """A queue of the sender's own, and what arrives on it."""
    connection = await aio_pika.connect(settings.amqp_url)
    arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(
            f"{settings.namespace}.replies.{uuid.uuid4().hex[:8]}", exclusive=True
        )

        async def keep(message: AbstractIncomingMessage) -> None:
            await message.ack()
            await arrived.put(message)

        await queue.consume(keep)
        yield queue.name, arrived
    finally:
        await connection.close()


async def publish_trigger(
    settings: Settings,
    body: Mapping[str, object],
    routing_key: str,
    reply_to: str | None = None,
    correlation_id: str | None = None,
) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.triggers")
        message = aio_pika.Message(
            orjson.dumps(body),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            reply_to=reply_to,
            correlation_id=correlation_id,
        )
        await exchange.publish(message, routing_key=routing_key)
    finally:
        await connection.close()


async def next_reply(
    arrived: asyncio.Queue[AbstractIncomingMessage],
) -> tuple[ReplyV1, AbstractIncomingMessage]:
    message = await asyncio.wait_for(arrived.get(), 30)
    return decode(ReplyV1, message.body), message


async def test_a_trigger_with_reply_to_gets_its_result_with_its_correlation_id(
    settings: Settings,
) -> None:
    """Given a trigger with ``reply_to`` and ``correlation_id``, when its execution
    succeeds, then one persistent ``reply.v1`` carries the result and the same id."""
    key = f"order-{uuid.uuid4().hex}"
    async with reply_queue(settings) as (address, arrived), running_worker(settings, tasks.ALL):
        body = {"target": "t.ok", "args": [4], "idempotency_key": key}
        await publish_trigger(settings, body, "t.ok", address, "corr-1")
        reply, message = await next_reply(arrived)
    assert (execution_id_for(key), "succeeded", {"doubled": 8}, 1) == (
        reply.execution_id,
        reply.status,
        reply.result,
        reply.attempts,
    )
    assert ("corr-1", "reply.v1", aio_pika.DeliveryMode.PERSISTENT) == (
        message.correlation_id,
        message.type,
        message.delivery_mode,
    )


async def test_a_failed_execution_replies_with_its_final_error(settings: Settings) -> None:
    """The final error after every retry: type, message and traceback, and the attempts."""
    async with reply_queue(settings) as (address, arrived), running_worker(settings, tasks.ALL):
        await publish_trigger(settings, {"target": "t.always_fails"}, "t.always_fails", address)
        reply, _ = await next_reply(arrived)
    assert ("failed", 3) == (reply.status, reply.attempts)
    assert reply.error is not None
    assert ("tests.integration.tasks.Boom", "still broken on attempt 3") == (
        reply.error.type,
        reply.error.message,
    )
    assert "Boom" in reply.error.traceback


async def test_a_duplicate_after_the_end_gets_the_reply_of_the_execution_it_matched(
    settings: Settings, client: Client
) -> None:
    """Given an execution that ended (and left the supervisor's memory of live ones), when
    a duplicate trigger with its key asks for a reply, then it gets that execution's end."""
    key = f"dup-{uuid.uuid4().hex}"
    body = {"target": "t.ok", "args": [5], "idempotency_key": key}
    async with reply_queue(settings) as (address, arrived), running_worker(settings, tasks.ALL):
        await publish_trigger(settings, body, "t.ok")
        await client.follow(execution_id_for(key)).result(timeout=30)
        await publish_trigger(settings, body, "t.ok", address, "again")
        reply, message = await next_reply(arrived)
    assert (execution_id_for(key), {"doubled": 10}, "again") == (
        reply.execution_id,
        reply.result,
        message.correlation_id,
    )


async def test_a_reply_address_that_is_gone_is_dropped_and_blocks_nothing(
    settings: Settings,
) -> None:
    """An address with no queue comes back unroutable: recorded as not delivered, and the
    reply of the next trigger still arrives."""
    gone = f"{settings.namespace}.nobody-{uuid.uuid4().hex}"
    key = f"gone-{uuid.uuid4().hex}"
    async with reply_queue(settings) as (address, arrived), running_worker(settings, tasks.ALL):
        body = {"target": "t.ok", "idempotency_key": key}
        await publish_trigger(settings, body, "t.ok", gone)
        await publish_trigger(settings, {"target": "t.ok", "args": [2]}, "t.ok", address)
        reply, _ = await next_reply(arrived)

        async def settled() -> list[ReplySent]:
            events = await log_events(settings, execution_id_for(key))
            sent = [e for e in events if isinstance(e, ReplySent)]
            assert sent
            return sent

        (sent,) = await eventually(settled, timeout=30)
    assert {"doubled": 4} == reply.result
    assert sent.delivered is False


async def test_an_empty_routing_key_is_dead_lettered_like_any_mismatch(settings: Settings) -> None:
    """An empty routing key does not skip the "routing key = target" check."""
    async with running_worker(settings, tasks.ALL):
        await publish_trigger(settings, {"target": "t.ok"}, "")
        (dead,) = await dead_letters(settings, expected=1, timeout=60)
    assert "is not the target" in str((dead.headers or {}).get(REASON_HEADER))


async def test_a_target_too_long_for_a_routing_key_is_refused_before_anything_is_recorded(
    settings: Settings, client: Client
) -> None:
    """``submit`` refuses it (nothing recorded, so nothing stays pending); a trigger naming
    it is dead-lettered by its schema."""
    target = "é" * 128  # 256 bytes as UTF-8
    with pytest.raises(ValueError, match="routing key"):
        await client.submit(target)
    async with running_worker(settings, tasks.ALL):
        await publish_trigger(settings, {"target": target}, "t.ok")
        (dead,) = await dead_letters(settings, expected=1, timeout=60)
    assert "does not match trigger.v1" in str((dead.headers or {}).get(REASON_HEADER))
    assert [] == [e for e in await log_events(settings) if getattr(e, "target", "") == target]
