"""Counting executions as they end, by following the event log cheaply.

The benchmark runs on the same cores as the worker it measures, so it reads the
stream with orjson instead of the validating decoder (``LogFollower``): the
numbers it needs are only types, ids and times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime

import orjson
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue

from ricochet.contracts import TERMINAL_TYPES
from ricochet.workers.amqp.topology import Names
from ricochet.workers.log.reader import STREAM_PREFETCH

STARTED = "attempt_started.v2"
FAILED = "execution_failed.v1"


class Tally:
    """Terminal events seen on the log, with the first attempt start and every ending time."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.ended: set[str] = set()
        self.failed = 0
        self.first_start: datetime | None = None
        self.end_times: list[datetime] = []
        self.done = asyncio.Event()
        self._progress = asyncio.Event()
        self.done_at = 0.0
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def follow(self, connection: AbstractConnection, names: Names) -> None:
        """Consume the stream from its next message on (acks in ``finally``: streams
        close the connection on any nack)."""
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=STREAM_PREFETCH)
        self._queue = await channel.declare_queue(names.events, passive=True)
        self._tag = await self._queue.consume(
            self._on_message, arguments={"x-stream-offset": "next"}
        )

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            self._tag = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            self.note(orjson.loads(message.body))
        finally:
            await message.ack()

    def note(self, batch: list[dict[str, object]]) -> None:
        for event in batch:
            kind, at = event.get("type"), event.get("at")
            if not isinstance(at, str):
                continue
            if kind == STARTED:
                started = datetime.fromisoformat(at)
                if self.first_start is None or started < self.first_start:
                    self.first_start = started
            elif kind in TERMINAL_TYPES and event.get("execution_id") not in self.ended:
                self.ended.add(str(event.get("execution_id")))
                self.end_times.append(datetime.fromisoformat(at))
                self.failed += kind == FAILED
        self._progress.set()
        if len(self.ended) >= self.expected and not self.done.is_set():
            self.done_at = time.perf_counter()
            self.done.set()

    async def until_ended(self, count: int) -> None:
        """Until at least ``count`` executions have ended."""
        while len(self.ended) < count:
            self._progress.clear()
            await self._progress.wait()

    def overall_per_s(self) -> float:
        """Executions / (last ending - first attempt start), by the events' own times."""
        assert self.first_start is not None, "no attempt started"
        span = (max(self.end_times) - self.first_start).total_seconds()
        return len(self.end_times) / span

    def steady_per_s(self) -> float:
        """The rate between the 10th and the 90th percentile of endings: start-up excluded."""
        ends = sorted(self.end_times)
        low, high = len(ends) // 10, len(ends) * 9 // 10 - 1
        return (high - low) / (ends[high] - ends[low]).total_seconds()
