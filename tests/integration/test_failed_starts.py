"""A worker or client whose start fails half-way closes what it opened (a robust connection
left behind would reconnect for ever and hang the process at exit)."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from ricochet import Client
from ricochet.errors import TopologyMismatch
from ricochet.workers.amqp.topology import Names
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings
from tests.integration import tasks


async def test_a_start_that_fails_half_way_closes_its_connection(settings: Settings) -> None:
    """Given a work queue already declared with other arguments (a classic queue where
    Ricochet declares a quorum one), when a worker starts, then its start raises and
    its connection is closed."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(Names(settings.namespace).work_queue("default"), durable=True)
    worker = Worker(settings, tasks.ALL)

    with pytest.raises(TopologyMismatch):
        await worker.start()

    assert worker._connection is not None
    assert worker._connection.is_closed


async def test_a_client_that_fails_to_open_closes_its_connection(settings: Settings) -> None:
    """Given the event exchange already declared as another type, when a client opens,
    then it raises and its connection is closed."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(
            Names(settings.namespace).events, aio_pika.ExchangeType.DIRECT, durable=True
        )
    client = Client(settings)

    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await client.__aenter__()

    assert client._connection is not None
    assert client._connection.is_closed


async def test_a_client_closed_from_another_task_closes_its_connection(settings: Settings) -> None:
    """Given a client opened in one task, when another task closes it (``asyncio.wait_for``
    runs ``__aexit__`` in a task of its own, with a copy of the context), then its
    connection is closed: resetting the current-client variable must not stop the close."""
    client = Client(settings)
    await client.__aenter__()

    await asyncio.wait_for(client.__aexit__(None, None, None), 30)

    assert client._connection is not None
    assert client._connection.is_closed
