"""Connections, channels and publishing, with every aio-pika option set explicitly.

aio-pika's defaults (transient messages, returns that do not raise) are wrong
for us: messages here are persistent, publishes are confirmed, and an
unroutable publish raises.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
)
from aio_pika.exceptions import PublishError

from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

JSON = "application/json"


CONNECT_TIMEOUT_S = 15.0
"""Per attempt, per address: a node that does not answer within it counts as down."""


async def connect(settings: Settings, role: str) -> AbstractRobustConnection:
    """A robust connection over every address in ``settings.amqp_url``, named after the
    process's role for the management UI. Every Ricochet connection is made here, so each
    fails over among the addresses the same way (``ricochet.workers.amqp.failover``)."""
    connection = FailoverConnection(
        settings.amqp_addresses,
        role,
        client_properties={"connection_name": f"ricochet-{role} {settings.worker_id}"},
    )
    await connection.connect(timeout=CONNECT_TIMEOUT_S)
    return connection


async def publishing_channel(connection: AbstractRobustConnection) -> AbstractChannel:
    """Confirms on, and unroutable messages raise instead of vanishing."""
    return await connection.channel(publisher_confirms=True, on_return_raises=True)


async def consuming_channel(connection: AbstractRobustConnection, prefetch: int) -> AbstractChannel:
    """A channel for consumers with an explicit prefetch (never the unbounded default)."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=prefetch)
    return channel


def persistent_message(
    body: bytes,
    *,
    headers: dict[str, Any] | None = None,
    expiration_s: float | None = None,
    type_: str | None = None,
) -> aio_pika.Message:
    """A persistent JSON message with a unique id (returns are matched by message id)."""
    return aio_pika.Message(
        body,
        content_type=JSON,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=uuid.uuid4().hex,
        timestamp=datetime.now(UTC),
        headers=headers or {},
        expiration=expiration_s,
        type=type_,
    )


PUBLISH_TIMEOUT_S = 15.0
RETRY_PAUSE_S = (0.05, 0.2, 0.5, 1.0, 2.0)


def retry_pause(tries: int) -> float:
    """Seconds to wait before try ``tries + 1`` of a publish (0-based ``tries`` so far)."""
    return RETRY_PAUSE_S[min(tries, len(RETRY_PAUSE_S) - 1)]


TRANSIENT = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.DeliveryError,
    ConnectionError,
    TimeoutError,
)
"""Broker trouble that a reconnect cures. ``PublishError`` (unroutable) is not among them."""

log = get_logger(__name__)


async def publish(exchange: AbstractExchange, message: aio_pika.Message, routing_key: str) -> None:
    """Publish once and wait for the broker's confirm; raises if unroutable, nacked or cut off."""
    await exchange.publish(
        message, routing_key=routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT_S
    )


def closed_for_good(exchange: AbstractExchange) -> bool:
    """Was the channel or connection closed on purpose (not lost, so never coming back)?

    aio-pika keeps this in its robust objects' ``close_called`` flags.
    """
    channel = getattr(exchange, "channel", None)
    connection = getattr(channel, "_connection", None)
    return bool(
        getattr(channel, "_close_called", False) or getattr(connection, "close_called", False)
    )


async def publish_until_confirmed(
    exchange: AbstractExchange, message: aio_pika.Message, routing_key: str
) -> None:
    """Publish, retrying through broker trouble until confirmed.

    For facts that must not be lost once the work they describe has happened.
    A retry after a lost confirm can duplicate the message: events carry
    deterministic ids, so readers drop the copy, and a work message's copy steps
    back at its start claim. An unroutable message (``PublishError``, a kind of
    ``DeliveryError``) is no trouble that passes: it raises at once.
    """
    for tries in itertools.count():
        try:
            await publish(exchange, message, routing_key)
            return
        except PublishError:
            raise
        except TRANSIENT as err:
            if closed_for_good(exchange):
                raise
            log.warning("publish.retrying", routing_key=routing_key, error=repr(err), tries=tries)
            await asyncio.sleep(retry_pause(tries))
            message.message_id = uuid.uuid4().hex
