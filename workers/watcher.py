"""Waiting for executions to end, by following the event log.

Waiting costs no thread and no worker slot: a waiter is a future resolved when
the terminal event arrives, however many retries (and minutes) that takes.
"""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from engine import ExecutionState, evolve, initial
from workers.log_reader import Entry, LogFollower, Offset, stream_channel
from workers.topology import Names


class ExecutionWatcher:
    """Folds the events of watched executions; resolves a future when each one ends."""

    def __init__(self, names: Names) -> None:
        self._names = names
        self._states: dict[str, ExecutionState] = {}
        self._ended: dict[str, asyncio.Future[ExecutionState]] = {}
        self._channel: AbstractChannel | None = None
        self._follower: LogFollower | None = None

    async def start(self, connection: AbstractRobustConnection, offset: Offset = "next") -> None:
        self._channel = await stream_channel(connection)
        self._follower = LogFollower(self._channel, self._names, self._on_entry)
        await self._follower.start(offset)

    def watch(self, execution_id: str) -> asyncio.Future[ExecutionState]:
        """Start watching (before publishing, so no event can slip by)."""
        if execution_id not in self._ended:
            self._states[execution_id] = initial(execution_id)
            self._ended[execution_id] = asyncio.get_running_loop().create_future()
        return self._ended[execution_id]

    def state(self, execution_id: str) -> ExecutionState | None:
        return self._states.get(execution_id)

    def _on_entry(self, entry: Entry) -> None:
        for event in entry.events:
            state = self._states.get(event.execution_id)
            if state is None:
                continue
            state = evolve(state, event)
            self._states[event.execution_id] = state
            future = self._ended[event.execution_id]
            if state.is_terminal and not future.done():
                future.set_result(state)

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
