"""Connections, channels and publishing, with every aio-pika option set explicitly.

aio-pika's defaults (transient messages, returns that do not raise) are wrong
for us: messages here are persistent, publishes are confirmed, and an
unroutable publish raises.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import ssl
import time
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

from ricochet.errors import BrokerUnreachable
from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.amqp.restores import as_passing
from ricochet.workers.amqp.tls import client_context
from ricochet.workers.amqp.trust import EventGate
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

JSON = "application/json"
log = get_logger(__name__)


CONNECT_TIMEOUT_S = 15.0
"""Per attempt, per address: a node that does not answer within it counts as down."""


STARTUP_PAUSES_S = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)
"""Pauses between start-up tries while the broker cannot be reached: short at first, for
a broker starting beside the process (compose, CI), then every 10 s, so a broker that
comes back is used within about 10 s and a broker down for hours is not hammered."""
STARTUP_JITTER = 0.2
"""Pauses vary by this fraction, so processes started together do not retry in step."""


def startup_pause(tries: int, chance: float = 0.5) -> float:
    """Seconds before start-up try ``tries + 1`` (``tries`` have failed so far); ``chance``
    in [0, 1) picks the jitter, 0.5 for none."""
    pause = STARTUP_PAUSES_S[min(tries, len(STARTUP_PAUSES_S) - 1)]
    return pause * (1 - STARTUP_JITTER + 2 * STARTUP_JITTER * chance)


async def connect(settings: Settings, role: str, wait_s: float = 0.0) -> FailoverConnection:
    """A robust connection over every address in ``settings.amqp_url``, named after the
    process's role for the management UI. Every Ricochet connection is made here, so each
    fails over among the addresses the same way (``ricochet.workers.amqp.failover``).

    When no address can be reached, raises ``BrokerUnreachable`` (one line: each address
    without its password, and why), at once or, for long-running processes that are
    given ``wait_s`` (``settings.startup_wait_s``), once that many seconds of tries have
    all failed; each failed try is logged as ``broker.waiting``. Once connected, a lost
    connection is reconnected by the connection itself, forever.

    ``amqps://`` addresses use the one TLS context of ``settings``
    (``ricochet.workers.amqp.tls``); a TLS file that cannot be used raises
    ``BrokerUnreachable`` at once, without waiting: no retry would fix it."""
    context = client_context(settings)
    deadline = time.monotonic() + wait_s
    tries = 0
    while True:
        try:
            return await _connect_once(settings, role, context)
        except BrokerUnreachable as err:
            left = deadline - time.monotonic()
            if left <= 0:
                if tries:
                    gave_up = f"{err}; gave up after {wait_s:g} s of tries"
                    raise BrokerUnreachable(gave_up, err.causes) from err
                raise
            pause = min(startup_pause(tries, random.random()), left)
            tries += 1
            _log_waiting(settings, role, err, pause, tries)
            await asyncio.sleep(pause)


async def _connect_once(
    settings: Settings, role: str, context: ssl.SSLContext | None
) -> FailoverConnection:
    """One round over the addresses: each tried once, in order."""
    connection = FailoverConnection(
        settings.amqp_addresses,
        role,
        EventGate(settings.event_writers or ()),
        ssl_context=context,
        client_properties={"connection_name": f"ricochet-{role} {settings.worker_id}"},
    )
    await connection.connect(timeout=CONNECT_TIMEOUT_S)
    return connection


def _log_waiting(
    settings: Settings, role: str, error: BrokerUnreachable, pause: float, tries: int
) -> None:
    """One warning per failed start-up try: where, why, and when the next one is."""
    addresses = settings.amqp_addresses
    log.warning(
        "broker.waiting",
        role=role,
        broker=", ".join(address.shown for address in addresses),
        vhost=addresses[0].vhost,
        cause="; ".join(error.causes) or str(error),
        tries=tries,
        next_try_s=round(pause, 1),
    )


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
    user_id: str | None = None,
) -> aio_pika.Message:
    """A persistent JSON message with a unique id (returns are matched by message id).
    ``user_id``: the connection's user, which RabbitMQ checks (``amqp.trust``)."""
    return aio_pika.Message(
        body,
        content_type=JSON,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=uuid.uuid4().hex,
        timestamp=datetime.now(UTC),
        headers=headers or {},
        expiration=expiration_s,
        type=type_,
        user_id=user_id,
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


async def publish(exchange: AbstractExchange, message: aio_pika.Message, routing_key: str) -> None:
    """Publish once and wait for the broker's confirm; raises if unroutable, nacked or cut off
    (a channel error that a reconnect's restore raised counts as cut off: ``restores``)."""
    try:
        await exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT_S
        )
    except aiormq.exceptions.AMQPChannelError as err:
        passing = as_passing(err)
        if passing is err:
            raise
        raise passing from err


def closed_for_good(exchange: AbstractExchange) -> bool:
    """Was the exchange's channel or connection closed on purpose (not lost, so never
    coming back)?"""
    return channel_closed_for_good(getattr(exchange, "channel", None))


def channel_closed_for_good(channel: object) -> bool:
    """Was the channel or its connection closed on purpose? aio-pika keeps this in its
    robust objects' ``close_called`` flags."""
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
