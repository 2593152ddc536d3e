"""Waiting for executions to end, by following the event log.

Waiting costs no thread and no worker slot: a waiter is a future resolved when
the terminal event arrives, however many retries (and minutes) that takes.
"""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from ricochet.engine import ExecutionState, evolve, initial
from ricochet.engine.recent import Recent
from ricochet.workers.amqp.topology import Names
from ricochet.workers.log.reader import Entry, LogFollower, Offset, stream_channel

ENDED_KEPT = 10_000
"""Ended executions whose outcome is kept for a late ``wait``; older ones are forgotten."""


class ExecutionWatcher:
    """Folds the events of watched executions; resolves a future when each one ends."""

    def __init__(self, names: Names) -> None:
        self._names = names
        self._states: dict[str, ExecutionState] = {}
        self._waiting: dict[str, asyncio.Future[ExecutionState]] = {}
        self._done: Recent[str, asyncio.Future[ExecutionState]] = Recent(ENDED_KEPT)
        self._channel: AbstractChannel | None = None
        self._follower: LogFollower | None = None

    async def start(self, connection: AbstractRobustConnection, offset: Offset = "next") -> None:
        self._channel = await stream_channel(connection)
        self._follower = LogFollower(self._channel, self._names, self._on_entry)
        await self._follower.start(offset)

    def watch(self, execution_id: str) -> asyncio.Future[ExecutionState]:
        """Start watching (before publishing, so no event can slip by)."""
        known = self._waiting.get(execution_id) or self._done.get(execution_id)
        if known is not None:
            return known
        self._states[execution_id] = initial(execution_id)
        future: asyncio.Future[ExecutionState] = asyncio.get_running_loop().create_future()
        self._waiting[execution_id] = future
        return future

    def state(self, execution_id: str) -> ExecutionState | None:
        done = self._done.get(execution_id)
        if done is not None:
            return done.result()
        return self._states.get(execution_id)

    def _on_entry(self, entry: Entry) -> None:
        for event in entry.events:
            state = self._states.get(event.execution_id)
            if state is None:
                continue
            state = evolve(state, event)
            self._states[event.execution_id] = state
            if state.is_terminal:
                self._end(state)

    def _end(self, state: ExecutionState) -> None:
        """Resolve the waiters; keep only the most recent endings, so memory stays flat."""
        del self._states[state.execution_id]
        future = self._waiting.pop(state.execution_id)
        future.set_result(state)
        self._done.add(state.execution_id, future)

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
