"""What plain aio-pika does on the same broker: the ceilings Ricochet is compared with."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

CHUNK = 500
BODY = b'{"payload": "' + b"x" * 185 + b'"}'  # 200 bytes, about an event batch's size
assert len(BODY) == 200


@dataclass(frozen=True, slots=True)
class Rates:
    publish_per_s: float
    consume_per_s: float


async def publish_then_consume(url: str, queue_name: str, count: int, prefetch: int) -> Rates:
    """Confirmed persistent publishes to a quorum queue (``CHUNK`` in flight), then a drain."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        exchange = channel.default_exchange

        async def one() -> None:
            message = aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, routing_key=queue_name)

        began = time.perf_counter()
        for start in range(0, count, CHUNK):
            await asyncio.gather(*(one() for _ in range(min(CHUNK, count - start))))
        published = time.perf_counter() - began
        consumer = await connection.channel(publisher_confirms=False)
        await consumer.set_qos(prefetch_count=prefetch)
        consumed = await _drain(consumer, await consumer.get_queue(queue_name), count)
        await channel.close()
    finally:
        await connection.close()
    return Rates(count / published, count / consumed)


async def _drain(channel: AbstractChannel, queue: AbstractQueue, count: int) -> float:
    """Seconds to receive and ack ``count`` messages with manual acks."""
    received = 0
    done = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        nonlocal received
        await message.ack()
        received += 1
        if received >= count:
            done.set()

    began = time.perf_counter()
    tag = await queue.consume(on_message, no_ack=False)
    await asyncio.wait_for(done.wait(), timeout=max(60.0, count / 500))
    elapsed = time.perf_counter() - began
    await queue.cancel(tag)
    await asyncio.sleep(0.1)  # let the last handlers return before the channel closes
    await channel.close()
    return elapsed


async def ttl_lateness(
    url: str,
    wait_queue: str,
    arrived_queue: str,
    dlx: str,
    count: int,
    ttl_s: float,
    *,
    quorum_arrival: bool = False,
) -> list[float]:
    """Seconds late, per message, that a TTL dead-letter arrives after ``publish + ttl_s``.

    ``count`` persistent messages are published at once with ``expiration=ttl_s``
    (aio-pika takes seconds) into a classic queue with no consumers whose
    dead-letter exchange routes to a consumed queue: Ricochet's delay mechanism, bare.
    ``quorum_arrival`` makes that queue a quorum queue, as Ricochet's work queues are.
    """
    connection = await aio_pika.connect(url)
    late: list[float] = []
    done = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        arrived = time.time()
        await message.ack()
        late.append(arrived - float(message.body) - ttl_s)
        if len(late) >= count:
            done.set()

    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=300)
        arrived_q = await _declare_ttl_path(channel, wait_queue, arrived_queue, dlx, quorum_arrival)
        tag = await arrived_q.consume(on_message, no_ack=False)

        async def one() -> None:
            sent = time.time()
            message = aio_pika.Message(
                repr(sent).encode(),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                expiration=ttl_s,
            )
            await channel.default_exchange.publish(message, routing_key=wait_queue)

        await asyncio.gather(*(one() for _ in range(count)))
        await asyncio.wait_for(done.wait(), timeout=ttl_s + 60)
        await arrived_q.cancel(tag)
        await asyncio.sleep(0.1)
        await channel.close()
    finally:
        await connection.close()
    return late


async def _declare_ttl_path(
    channel: AbstractChannel, wait_queue: str, arrived_queue: str, dlx: str, quorum: bool
) -> AbstractQueue:
    """A consumer-less queue dead-lettering through ``dlx`` into the arrival queue (returned)."""
    exchange = await channel.declare_exchange(dlx, aio_pika.ExchangeType.FANOUT, durable=True)
    arrival: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    arrived = await channel.declare_queue(arrived_queue, durable=True, arguments=arrival)
    await arrived.bind(exchange, routing_key="")
    arguments: dict[str, Any] = {"x-dead-letter-exchange": dlx}
    await channel.declare_queue(wait_queue, durable=True, arguments=arguments)
    return arrived
