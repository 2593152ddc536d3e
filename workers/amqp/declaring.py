"""Declaring the topology when allowed to, checking it when not (README, "Roles").

Every component declares what it needs at start (SPEC section 4), so a fresh broker
just works with one all-powerful user. With least-privilege users
(``ricochet.workers.amqp.permissions``) only the ``topology`` role may configure the
shared objects: RabbitMQ refuses a ``queue.declare`` without configure rights even
when the queue exists with equal arguments. So a process first tries to declare; when
the broker refuses (``ACCESS_REFUSED``) it checks passively instead (a passive declare
needs no permission), and a missing object ends it with ``TopologyMissing``: one line
naming the object and the fix, never a traceback.

Both tries happen on a channel of their own: a refused or failed declare closes the
channel it was made on, and the caller's channels must stay open. A refused declare
is logged by the broker as a channel error; that is the price of one setting fewer.

Readers (replay, status, the projector) never declare at all: the log follower's
passive declare of the event log (``passive_queue``) is all they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiormq
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection

from ricochet.errors import TopologyMissing
from ricochet.workers.amqp.broker import startup_pause
from ricochet.workers.amqp.topology import (
    Names,
    QueueSpec,
    core_queues,
    declare_core,
    declare_queue,
    exchanges,
)
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

log = get_logger(__name__)

Step = Callable[[AbstractChannel], Awaitable[object]]
T = TypeVar("T")


async def ensure_core(connection: AbstractRobustConnection, settings: Settings) -> Names:
    """Declare the core topology, or (without configure rights) check that it exists."""
    names = Names(settings.namespace)
    if await _declared(connection, lambda channel: declare_core(channel, settings)):
        return names
    log.info("topology.checked_only", namespace=names.namespace)
    await check(connection, names, settings)
    return names


async def ensure_queue(
    connection: AbstractRobustConnection, channel: AbstractChannel, spec: QueueSpec
) -> AbstractQueue:
    """``spec``'s queue on ``channel``, to consume from: declared (and bound) as before
    when this user may configure it, else checked passively (``TopologyMissing`` if
    absent). A passive one is restored passively after a reconnect, so it never needs
    configure rights later either."""
    if await _declared(connection, lambda scratch: declare_queue(scratch, spec)):
        return await declare_queue(channel, spec)
    return await passive_queue(channel, spec.name)


async def until_topology(attempt: Callable[[], Awaitable[T]], wait_s: float, role: str) -> T:
    """``attempt``, tried again while the topology is missing, for up to ``wait_s`` seconds
    (``settings.startup_wait_s``): a worker or projector started beside the deploy's
    ``ricochet topology`` (compose, Kubernetes) waits for it, as it waits for the
    broker, with the same pauses and a ``topology.waiting`` warning per try; then
    ``TopologyMissing`` is raised (the CLI prints it and exits 2)."""
    deadline, tries = time.monotonic() + wait_s, 0
    while True:
        try:
            return await attempt()
        except TopologyMissing as err:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            pause = min(startup_pause(tries, random.random()), left)
            tries += 1
            log.warning("topology.waiting", role=role, missing=str(err), next_try_s=round(pause, 1))
            await asyncio.sleep(pause)


async def check(connection: AbstractRobustConnection, names: Names, settings: Settings) -> None:
    """Every core exchange and queue exists (passive declares: no permission needed)."""
    specs = core_queues(names, settings)
    channel = await connection.channel(publisher_confirms=False)
    try:
        for exchange in exchanges(names):
            await _passive_exchange(channel, exchange.name)
        for spec in specs:
            await passive_queue(channel, spec.name)
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


async def _declared(connection: AbstractRobustConnection, step: Step) -> bool:
    """Run ``step`` on a scratch channel: True if done, False if the broker refused it for
    lack of permission. Anything else (other arguments, say) raises as before."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        await step(channel)
    except aiormq.exceptions.ChannelAccessRefused as err:
        log.debug("topology.declare_refused", reason=str(err)[:300])
        return False
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
    return True


async def passive_queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    """The queue, passively declared (so restored passively too), or ``TopologyMissing``."""
    try:
        return await channel.declare_queue(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity as err:
        raise TopologyMissing("queue", name, vhost_of(channel)) from err


async def _passive_exchange(channel: AbstractChannel, name: str) -> None:
    """Nothing if the exchange exists, else ``TopologyMissing``."""
    try:
        await channel.get_exchange(name, ensure=True)
    except aiormq.exceptions.ChannelNotFoundEntity as err:
        raise TopologyMissing("exchange", name, vhost_of(channel)) from err


def vhost_of(channel: AbstractChannel) -> str:
    """The vhost a channel's connection is on, for errors (a ``FailoverConnection`` knows)."""
    address = getattr(getattr(channel, "_connection", None), "address", None)
    return str(getattr(address, "vhost", "?"))
