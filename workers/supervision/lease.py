"""The supervisor's lease: being the heartbeat queue's single active consumer.

Every worker process consumes ``<ns>.heartbeats``, a queue with a single active
consumer: the broker delivers to one consumer only, so a delivery is the broker's
word that this process holds the lease, now. The lease is lost when that consumer
goes: its connection closes (a cut, a node stopping, ``close_all_connections``),
its channel closes, or the broker cancels it (``basic.cancel``, e.g. the queue
deleted). The broker then makes another consumer active at once, so the holder
must stop acting before it can act again, and it can act again only once its
connection is back: each of these is noticed in a callback that aio-pika runs
before it restores anything (a lost connection: before it reconnects), and the
supervisor stands down there (``Supervisor.stand_down``).

aio-pika's robust connection restores the consumer after a reconnect, but not the
lease: the broker may have made another consumer active meanwhile. So nothing is
resumed on a reconnect. The restored consumer waits like any other, and if a
heartbeat reaches it, the broker has made it active again and the supervisor takes
over anew (``supervisor.active``, checkpoint, catch-up). A heartbeat delivered
before the lease was lost and handled after it is ignored (``epoch``). This uses
nothing but single active consumer and consumer cancel notifications, and works
the same on RabbitMQ 3.10 and 4.x (4.x's consumer priorities are not used: every
consumer here has the same priority, so the active one changes only when it goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from pamqp.commands import Basic

from ricochet.workers.amqp.declaring import ensure_queue
from ricochet.workers.amqp.topology import Names, supervisor
from ricochet.workers.logs import get_logger

log = get_logger(__name__)

HEARTBEAT_PREFETCH = 500
LET_GO_WAIT_S = 5.0
"""How long a take-over waits for the last stand-down's channels to close."""


class Holder(Protocol):
    """What the lease tells: a heartbeat that proves it is held, and its loss."""

    async def heartbeat(self, message: AbstractIncomingMessage) -> None: ...

    def stand_down(self, reason: str) -> None: ...


class Lease:
    """The heartbeat consumer, and the callbacks that say when the lease may have moved."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        holder: Holder,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._names = names
        self._holder = holder
        self._monotonic = monotonic
        self._channel: AbstractChannel | None = None
        self._tag: str | None = None
        self._stopped = False
        self.epoch = 0
        """How many times the lease may have been lost: a heartbeat that arrived in an
        earlier epoch proves nothing now."""
        self.lost_at: float | None = None
        """When (monotonic) this process's connection was last lost."""
        self._letting_go: asyncio.Future[list[object]] | None = None

    async def start(self) -> None:
        """Join the heartbeat queue; the broker decides whether this one is active."""
        channel = self._channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=HEARTBEAT_PREFETCH)
        queue = await ensure_queue(self._connection, channel, supervisor(self._names))
        self._connection.close_callbacks.add(self._connection_closed)
        channel.close_callbacks.add(self._channel_closed)
        await self._watch_cancels(channel)
        if isinstance(channel, AbstractRobustChannel):
            channel.reopen_callbacks.add(self._watch_cancels)
        self._tag = await queue.consume(self._delivered)

    async def stop(self) -> None:
        """Leave the queue (a stop, not a loss: nobody stands down for it)."""
        self._stopped = True
        self._connection.close_callbacks.discard(self._connection_closed)
        if self._channel is not None:
            self._channel.close_callbacks.discard(self._channel_closed)
            with contextlib.suppress(Exception):
                await self._channel.close()

    def let_go(self, held: list[Awaitable[object]]) -> None:
        """Let go of what the last holding opened: all at once, so the first step of each
        (a cancel, a channel marked closed) runs before control returns to aio-pika."""
        self._letting_go = asyncio.gather(*held, return_exceptions=True)

    async def let_go_done(self) -> None:
        """Before the lease is taken again: the last holding's channels are closed (or a
        while passed)."""
        if self._letting_go is not None:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._letting_go), LET_GO_WAIT_S)
            self._letting_go = None

    async def _delivered(self, message: AbstractIncomingMessage) -> None:
        """A heartbeat: proof of the lease if its channel is still the live one."""
        epoch = self.epoch
        if message.channel.is_closed:
            return  # delivered on a channel since lost: the broker gives it to another
        try:
            await message.ack()
        except Exception:
            return
        if epoch == self.epoch and not self._stopped:
            await self._holder.heartbeat(message)

    def _lost(self, reason: str) -> Awaitable[None]:
        """Stand down now, in the callback itself (aio-pika calls its close callbacks and
        only awaits what they return before it restores or reconnects anything), and let
        the stand-down's first steps run before aio-pika goes on."""
        self.epoch += 1
        if not self._stopped:
            self._holder.stand_down(reason)
        return asyncio.sleep(0)

    def _connection_closed(self, _sender: object, error: BaseException | None = None) -> Any:
        self.lost_at = self._monotonic()
        return self._lost(f"connection closed: {error!r}")

    def _channel_closed(self, _sender: object, error: BaseException | None = None) -> Any:
        return self._lost(f"lease channel closed: {error!r}")

    async def _watch_cancels(self, channel: object) -> None:
        """Hear the broker cancel the consumer, on the channel open now (called again on
        every reopen, each with a new underlying channel)."""
        if isinstance(channel, AbstractChannel):
            underlying = await channel.get_underlay_channel()
            underlying.on_consumer_cancel_callbacks.add(self._cancelled)

    async def _cancelled(self, frame: Basic.Cancel) -> None:
        """aiormq awaits this in its channel reader, before it reads on."""
        if frame.consumer_tag == self._tag:
            await self._lost("lease consumer cancelled by the broker")
