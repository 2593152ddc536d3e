"""The projector: follows the event log and keeps every execution's state current.

States live in a store (SQLite): the one given, which a restart resumes from
(offset + 1, instead of replaying the log) and which keeps states whose events
retention has removed; or, without one, a temporary file dropped on stop. In
memory it keeps only a bounded cache (``StoredProjection``), so its size does
not follow the number of executions or the size of their payloads. It serves
the states read-only over HTTP (``ricochet.workers.read.api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from ricochet.contracts import Event
from ricochet.engine import TERMINAL, ExecutionState, Status, evolve, initial
from ricochet.errors import TopologyMissing
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.declaring import until_topology
from ricochet.workers.amqp.topology import Names
from ricochet.workers.amqp.trust import connection_gate
from ricochet.workers.log.reader import Entry, LogFollower, Offset, stream_channel, tail_offset
from ricochet.workers.logs import get_logger
from ricochet.workers.read.provenance import provenance_of
from ricochet.workers.read.store import ProjectionStore
from ricochet.workers.settings import Settings

log = get_logger(__name__)

FLUSH_EVERY_S = 0.25
FLUSH_AT_STATES = 128
FLUSH_AT_BYTES = 4 * 1024 * 1024
"""Changed states are written early once this many wait, or once the messages folded
since the last write reach this size: with the largest state the shared limits let a
writer record, this bounds what waits in memory for the next write."""
CACHE_STATES = 4096
CACHE_BYTES = 16 * 1024 * 1024
"""Live (non-terminal) states kept for the fold's next events, by count and by stored
JSON size; terminal ones are read back from the store when asked for."""


class StoredProjection:
    """The fold of the log (SPEC 3), its states in the store and a bounded cache.

    ``apply`` is ``engine.Projection.apply`` with the state read from the
    pending writes, the cache or the store instead of a dict, so the result is
    the same fold (SPEC 7.5). Changed states wait in ``_dirty`` until
    ``flush`` writes them with the offset they include.
    """

    def __init__(self, store: ProjectionStore, offset: Callable[[], int | None]) -> None:
        self.store = store
        self.applied = 0
        self.ignored = 0
        self._offset = offset
        self._dirty: dict[str, ExecutionState] = {}
        self._cache: OrderedDict[str, tuple[ExecutionState, int]] = OrderedDict()
        self._cached_bytes = 0
        self._saved_offset: int | None = None

    def get(self, execution_id: str) -> ExecutionState | None:
        state = self._dirty.get(execution_id)
        if state is not None:
            return state
        cached = self._cache.get(execution_id)
        if cached is not None:
            self._cache.move_to_end(execution_id)
            return cached[0]
        return self.store.get(execution_id)

    def apply(self, event: Event) -> ExecutionState:
        """Fold one event in; returns the execution's new state."""
        before = self.get(event.execution_id)
        after = evolve(before or initial(event.execution_id), event)
        if after is before:
            self.ignored += 1
        else:
            self._dirty[event.execution_id] = after
            self.applied += 1
        return after

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def flush(self) -> None:
        """Write the changed states with the offset they include; cache the live ones.

        The offset is written even with no state changed (messages that were
        unreadable, say), so a restart does not read them again.
        """
        offset = self._offset()
        if not self._dirty and offset == self._saved_offset:
            return
        dirty, self._dirty = self._dirty, {}
        sizes = self.store.save(dirty.values(), offset)
        self._saved_offset = offset
        for execution_id, state in dirty.items():
            self._forget(execution_id)
            if state.status not in TERMINAL:
                self._cache[execution_id] = (state, sizes[execution_id])
                self._cached_bytes += sizes[execution_id]
        while self._cache and (len(self._cache) > CACHE_STATES or self._cached_bytes > CACHE_BYTES):
            self._forget(next(iter(self._cache)))

    def _forget(self, execution_id: str) -> None:
        cached = self._cache.pop(execution_id, None)
        if cached is not None:
            self._cached_bytes -= cached[1]

    def cache_size(self) -> tuple[int, int]:
        """(states, stored bytes) held in memory: for tests and /health."""
        return len(self._cache) + len(self._dirty), self._cached_bytes

    def count(self) -> int:
        self.flush()
        return self.store.count()

    def matching(
        self, status: Status | None, target: str | None, since: datetime | None, limit: int
    ) -> list[ExecutionState]:
        self.flush()
        return self.store.matching(status, target, since, limit)

    @property
    def executions(self) -> Mapping[str, ExecutionState]:
        """Every state, read from the store (after writing what is pending) as it is asked."""
        return _StoredStates(self)


class _StoredStates(Mapping[str, ExecutionState]):
    """A read-only mapping over the store, comparable with a fresh fold's dict."""

    def __init__(self, projection: StoredProjection) -> None:
        self._projection = projection

    def __getitem__(self, execution_id: str) -> ExecutionState:
        state = self._projection.get(execution_id)
        if state is None:
            raise KeyError(execution_id)
        return state

    def __iter__(self) -> Iterator[str]:
        self._projection.flush()
        return iter(self._projection.store.ids())

    def __len__(self) -> int:
        return self._projection.count()


class Projector:
    """A live fold of the whole log (SPEC section 3), durable when given a store."""

    def __init__(self, settings: Settings, store: Path | None = None) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self.provenance = provenance_of(settings)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if store is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="ricochet-projector-")
            store = Path(self._scratch.name) / "projection.sqlite3"
        self.store = ProjectionStore(store, self.provenance)
        self.projection = StoredProjection(self.store, lambda: self.offset)
        self.events_read = 0
        self.resumed_from: int | None = None
        self._unwritten_bytes = 0
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._follower: LogFollower | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.tail: int | None = None
        """The stream's last offset when last asked (``refresh_tail``): for the lag metric."""

    async def refresh_tail(self) -> None:
        """Ask the broker where the stream ends now (before a metrics scrape)."""
        if self._connection is not None:
            self.tail = await tail_offset(self._connection, self.names)

    def status_counts(self) -> dict[str, int]:
        """Executions in the store by status (after writing what is pending)."""
        self.flush()
        rows = self.store.db.execute("SELECT status, COUNT(*) FROM executions GROUP BY status")
        return {str(status): int(count) for status, count in rows}

    @property
    def offset(self) -> int | None:
        """The last stream offset folded in."""
        if self._follower is not None and self._follower.last_offset is not None:
            return self._follower.last_offset
        return self.resumed_from

    @property
    def unreadable(self) -> int:
        """Messages skipped because they could not be decoded (each logged with its offset)."""
        return 0 if self._follower is None else self._follower.unreadable

    @property
    def untrusted(self) -> Mapping[tuple[str, str], int]:
        """Messages dropped as not written by an event writer (``amqp.trust``)."""
        return connection_gate(self._connection).dropped

    def progress(self) -> dict[str, int | None]:
        """Where the fold stands: for /health, and for tests of resuming."""
        cached, cached_bytes = self.projection.cache_size()
        return {
            "offset": self.offset,
            "resumed_from": self.resumed_from,
            "events_read": self.events_read,
            "unreadable": self.unreadable,
            "cached_states": cached,
            "cached_bytes": cached_bytes,
        }

    async def start(self) -> None:
        start: Offset = "first"
        self.store.open()
        self.resumed_from = self.store.offset()
        if self.resumed_from is not None:
            start = self.resumed_from + 1
        self._flusher = asyncio.create_task(self._flush_forever(), name="ricochet-flush")
        self._connection = await connect(
            self.settings, "projector", wait_s=self.settings.startup_wait_s
        )
        try:
            await until_topology(
                lambda: self._follow(start), self.settings.startup_wait_s, "projector"
            )
        except TopologyMissing:
            await self.stop()
            raise
        log.info("projector.started", offset=str(start), executions=self.store.count())

    async def _follow(self, start: Offset) -> None:
        """Follow the log from ``start``: read-only, it checks the log and declares nothing
        (``TopologyMissing`` when there is none; the channel is then closed)."""
        assert self._connection is not None
        channel = await stream_channel(self._connection)
        follower = LogFollower(channel, self.names, self._on_entry)
        try:
            await follower.start(start)
        except TopologyMissing:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._channel, self._follower = channel, follower

    def _on_entry(self, entry: Entry) -> None:
        """Fold a message's events; write early when many states wait (only between
        messages, so the stored offset always matches the stored states)."""
        for event in entry.events:
            self.events_read += 1
            self.projection.apply(event)
        self._unwritten_bytes += entry.size
        if self.projection.pending >= FLUSH_AT_STATES or self._unwritten_bytes >= FLUSH_AT_BYTES:
            self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            self.flush()

    def flush(self) -> None:
        """Write what changed since the last flush, with the offset it includes."""
        self.projection.flush()
        self._unwritten_bytes = 0

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        self.flush()
        self.store.close()
        if self._scratch is not None:
            self._scratch.cleanup()
        if self._connection is not None:
            await self._connection.close()
