"""The projector: follows the event log and keeps every execution's state current.

With a store (SQLite) it writes states and the offset they include every
quarter second, so a restart resumes at offset + 1 instead of replaying the
log, and states whose events retention has removed are kept. It serves them
read-only over HTTP (``workers.api``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from engine import ExecutionState, Projection
from workers.broker import connect, publishing_channel
from workers.log_reader import Entry, LogFollower, Offset, stream_channel
from workers.logs import get_logger
from workers.settings import Settings
from workers.store import ProjectionStore
from workers.topology import Names, declare_core

log = get_logger(__name__)

FLUSH_EVERY_S = 0.25


class Projector:
    """A live fold of the whole log (SPEC section 3), durable when given a store."""

    def __init__(self, settings: Settings, store: Path | None = None) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self.projection = Projection()
        self.store = ProjectionStore(store) if store is not None else None
        self.events_read = 0
        self.resumed_from: int | None = None
        self._dirty: dict[str, ExecutionState] = {}
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._follower: LogFollower | None = None
        self._flusher: asyncio.Task[None] | None = None

    @property
    def offset(self) -> int | None:
        """The last stream offset folded in."""
        if self._follower is not None and self._follower.last_offset is not None:
            return self._follower.last_offset
        return self.resumed_from

    def progress(self) -> dict[str, int | None]:
        """Where the fold stands: for /health, and for tests of resuming."""
        return {
            "offset": self.offset,
            "resumed_from": self.resumed_from,
            "events_read": self.events_read,
        }

    async def start(self) -> None:
        start: Offset = "first"
        if self.store is not None:
            self.store.open()
            self.projection, self.resumed_from = self.store.load()
            if self.resumed_from is not None:
                start = self.resumed_from + 1
            self._flusher = asyncio.create_task(self._flush_forever(), name="ricochet-flush")
        self._connection = await connect(self.settings, "projector")
        setup = await publishing_channel(self._connection)
        await declare_core(setup, self.settings)
        await setup.close()
        self._channel = await stream_channel(self._connection)
        self._follower = LogFollower(self._channel, self.names, self._on_entry)
        await self._follower.start(start)
        log.info("projector.started", offset=str(start), executions=len(self.projection.executions))

    def _on_entry(self, entry: Entry) -> None:
        for event in entry.events:
            self.events_read += 1
            state = self.projection.apply(event)
            self._dirty[state.execution_id] = state

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            self.flush()

    def flush(self) -> None:
        """Write what changed since the last flush, with the offset it includes."""
        if self.store is None or not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        self.store.save(dirty.values(), self.offset)

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        self.flush()
        if self.store is not None:
            self.store.close()
        if self._connection is not None:
            await self._connection.close()
