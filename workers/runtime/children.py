"""Calling a task from inside a task or workflow: a child execution, waited on.

The n-th call of an attempt is child ``child_id(parent, n)`` in every attempt of
that parent. A retried parent therefore finds the children its earlier attempts
started (looking in the log from the parent's request time) and reuses those
that succeeded, recording ``ChildReused``, instead of running them again.

Waiting costs no execution slot: the parent gives its slot back while it waits,
so children (and other work) can run, and takes one again when the child ends,
however many retries and minutes that takes. An async parent waits as a
suspended coroutine; a sync parent's thread blocks (idle, not busy) on a future.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from ricochet.contracts import ExecutionRequested, Json, check_args
from ricochet.engine import ExecutionState, RequestExecution, Status, project
from ricochet.engine.children import child_id, reused
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.cancel import Canceller
from ricochet.workers.client.dispatch import Dispatcher
from ricochet.workers.client.handle import Handle
from ricochet.workers.client.watcher import ExecutionWatcher
from ricochet.workers.clock import Clock
from ricochet.workers.log.reader import Offset, read_log
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.runtime.context import AttemptContext

CLOCK_SKEW = timedelta(seconds=30)
"""Hosts' clocks differ: a parent's request time, written by another host, is trusted
to within this much when looking for the children of its earlier attempts."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """Waits for one child (whose end may be known already) for its ``Handle``."""

    service: ChildService
    ended: asyncio.Future[ExecutionState]

    async def wait(self, execution_id: str, timeout: float | None = None) -> ExecutionState:
        return await asyncio.wait_for(self.service.wait(self.ended), timeout)

    async def cancel(self, execution_id: str, reason: str = "") -> ExecutionState:
        return await self.service.cancel(execution_id, reason)


class ChildService:
    """One per worker: starts children, finds earlier ones, and waits without a slot."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        dispatcher: Dispatcher,
        recorder: EventRecorder,
        slots: asyncio.Semaphore,
        clock: Clock,
    ) -> None:
        self._connection = connection
        self._names = names
        self._dispatcher = dispatcher
        self._recorder = recorder
        self._slots = slots
        self._clock = clock
        self._watcher = ExecutionWatcher(names)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._following = False
        self._following_lock = asyncio.Lock()

    async def start_watching(self) -> None:
        """Remember the loop; the log is followed only once a child is first called,
        so workers whose tasks call none do not read every event."""
        self._loop = asyncio.get_running_loop()

    async def _follow_log(self) -> None:
        async with self._following_lock:
            if not self._following:
                await self._watcher.start(self._connection, "next")
                self._following = True

    async def stop(self) -> None:
        if self._following:
            await self._watcher.stop()

    def scope(self, context: AttemptContext, requested_at_ms: int | None) -> AttemptContext:
        """The attempt's context, able to call children."""
        return replace(context, children=ChildScope(self, context, requested_at_ms))

    async def start(
        self, scope: ChildScope, target: str, args: tuple[Json, ...], kwargs: Mapping[str, Json]
    ) -> Handle:
        check_args(args, kwargs, self._dispatcher.limits)  # raised in the parent, watching nothing
        await self._follow_log()
        position = scope.take_position()
        parent = scope.context
        child = child_id(parent.execution_id, position)
        ended = self._watcher.watch(child)
        earlier = (await scope.earlier_children()).get(child)
        if earlier is None:
            request = RequestExecution(
                child,
                target,
                self._clock(),
                args,
                dict(kwargs),
                parent_id=parent.execution_id,
                source="child",
            )
            await self._dispatcher.start(request)
        elif earlier.is_terminal:
            if earlier.status is Status.SUCCEEDED:
                note = reused(
                    parent.execution_id, parent.attempt, position, child, target, self._clock()
                )
                await self._recorder.record((note,))
            ended = asyncio.get_running_loop().create_future()
            ended.set_result(earlier)
        return Handle(child, _Ended(self, ended))

    async def cancel(self, execution_id: str, reason: str) -> ExecutionState:
        """Cancel a child (``await handle.cancel()`` in a parent): see ``Client.cancel``."""
        canceller = Canceller(self._connection, self._names, self._recorder, self._clock, "child")
        return await canceller.cancel(execution_id, reason)

    async def wait(self, ended: asyncio.Future[ExecutionState]) -> ExecutionState:
        """Wait for a child with the parent's slot given back meanwhile."""
        if ended.done():
            return ended.result()
        self._slots.release()
        try:
            return await asyncio.shield(ended)
        finally:
            await self._slots.acquire()

    async def earlier(self, parent_id: str, since: Offset) -> dict[str, ExecutionState]:
        """The children earlier attempts of ``parent_id`` started, by id, as the log says."""
        events = [
            e
            for entry in await read_log(self._connection, self._names, since)
            for e in entry.events
        ]
        children = {
            e.execution_id
            for e in events
            if isinstance(e, ExecutionRequested) and e.parent_id == parent_id
        }
        folded = project(e for e in events if e.execution_id in children)
        return dict(folded.executions)

    def run_from_thread(self, make: Callable[[], Any]) -> Any:
        """Run a coroutine on the worker's loop from a sync parent's thread, and wait."""
        assert self._loop is not None, "start_watching() first"
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result()


class ChildScope:
    """One attempt's child calls: counts positions and caches what earlier attempts did."""

    def __init__(
        self, service: ChildService, context: AttemptContext, requested_at_ms: int | None
    ) -> None:
        self._service = service
        self.context = context
        self._requested_at_ms = requested_at_ms
        self._position = 0
        self._lock = threading.Lock()
        self._earlier: dict[str, ExecutionState] | None = None

    def take_position(self) -> int:
        with self._lock:
            position = self._position
            self._position += 1
            return position

    async def earlier_children(self) -> dict[str, ExecutionState]:
        """Nothing for a first attempt; otherwise read once from the parent's request."""
        if self._earlier is None:
            if self.context.attempt == 1:
                self._earlier = {}
            else:
                since: Offset = "first"
                if self._requested_at_ms is not None:
                    at = datetime.fromtimestamp(self._requested_at_ms / 1000, UTC) - CLOCK_SKEW
                    since = at.replace(microsecond=0)
                self._earlier = await self._service.earlier(self.context.execution_id, since)
        return self._earlier

    async def _call(self, target: str, args: tuple[Json, ...], kwargs: Mapping[str, Json]) -> Json:
        handle = await self._service.start(self, target, args, kwargs)
        return await handle.result()

    def call(self, target: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """``child(...)``: awaitable from an async parent, blocking in a sync one's thread."""
        if _on_loop():
            return self._call(target, args, kwargs)
        return self._service.run_from_thread(lambda: self._call(target, args, kwargs))

    def submit(self, target: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """``await child.submit(...)``: a handle, so several children can run at once."""
        return self._service.start(self, target, args, kwargs)


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
