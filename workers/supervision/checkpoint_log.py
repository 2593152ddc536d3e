"""Where checkpoints live: a stream of their own, ``<ns>.checkpoints``.

A stream outlives any supervisor, is replicated like the event log, and keeps
the last checkpoints by size. Only the newest readable one matters: the reader
starts at the last chunk and, if nothing there can be read, looks a few
messages further back before giving up (the caller then replays the log).

A checkpoint says which executions are live and where in the log to resume, so a
forged one could make a supervisor forget work: checkpoints carry their writer's
``user_id`` like events, and one from a writer that is not believed is skipped
like an unreadable one (``amqp.trust``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from ricochet.errors import UnreadableCheckpoint
from ricochet.workers.amqp.broker import persistent_message, publish, publishing_channel
from ricochet.workers.amqp.topology import Names
from ricochet.workers.amqp.trust import connection_gate, connection_writer
from ricochet.workers.log.reader import until_quiet
from ricochet.workers.logs import get_logger
from ricochet.workers.supervision.checkpoint import Checkpoint, read

log = get_logger(__name__)

LOOK_BACK = 16
"""How many earlier checkpoints to try when the newest cannot be read."""
FIRST_WAIT_S = 0.5
QUIET_S = 0.1
MAX_WAIT_S = 5.0


@dataclass(slots=True)
class _Collected:
    bodies: dict[int, bytes | None] = field(default_factory=dict)
    """By offset; None for a message whose writer is not believed."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class CheckpointLog:
    """Saves checkpoints (confirmed) and finds the newest readable one."""

    def __init__(self, connection: AbstractRobustConnection, names: Names) -> None:
        self._connection = connection
        self._names = names
        self._channel: AbstractChannel | None = None

    async def save(self, body: bytes) -> None:
        """Publish one checkpoint and wait for the broker's confirm."""
        if self._channel is None or self._channel.is_closed:
            self._channel = await publishing_channel(self._connection)
        message = persistent_message(
            body, type_="ricochet.checkpoint", user_id=connection_writer(self._connection)
        )
        await publish(self._channel.default_exchange, message, self._names.checkpoints)

    async def close(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def latest(self) -> Checkpoint | None:
        """The newest checkpoint that can be read, or None."""
        newest = await self._read("last")
        found = _newest_readable(newest)
        if found is not None or not newest:
            return found
        earliest = max(0, min(newest) - LOOK_BACK)
        return _newest_readable(await self._read(earliest))

    async def _read(self, start: str | int) -> dict[int, bytes | None]:
        """Bodies by offset from ``start`` until the stream goes quiet (streams are never
        rejected or nacked: every delivery is acked)."""
        collected = _Collected()
        gate, stream = connection_gate(self._connection), self._names.checkpoints
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=LOOK_BACK + 8)
        try:
            queue = await channel.declare_queue(self._names.checkpoints, passive=True)

            async def keep(message: AbstractIncomingMessage) -> None:
                try:
                    offset = int(message.headers.get("x-stream-offset", -1))  # type: ignore[arg-type]
                    refused = gate.refuses(stream, offset, message.user_id)
                    collected.bodies[offset] = None if refused else message.body
                    collected.arrived.set()
                finally:
                    await message.ack()

            await queue.consume(keep, arguments={"x-stream-offset": start})
            await until_quiet(collected.arrived, FIRST_WAIT_S, QUIET_S, MAX_WAIT_S)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return collected.bodies


def _newest_readable(bodies: dict[int, bytes | None]) -> Checkpoint | None:
    for offset in sorted(bodies, reverse=True):
        body = bodies[offset]
        if body is None:
            continue
        try:
            return read(body)
        except UnreadableCheckpoint as err:
            log.warning("checkpoint.unreadable", offset=offset, reason=str(err)[:300])
    return None
