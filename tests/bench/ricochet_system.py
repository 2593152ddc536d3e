"""Ricochet as a ``System`` of the suite: ``ricochet worker`` processes, timed by the log.

Times come from the events themselves (``AttemptStarted.at``, ``RetryScheduled.due_at``,
terminal events' ``at``), read from the stream after or while the workers run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from aio_pika.abc import AbstractRobustConnection

from ricochet.contracts import AttemptStarted, ExecutionRequested, RetryScheduled
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core, declare_queue, work_queue
from ricochet.workers.client.client import Client
from ricochet.workers.log.reader import Entry, LogFollower, read_log, stream_channel, tail_offset
from ricochet.workers.runtime.tasks import DEFAULT_QUEUE
from ricochet.workers.settings import Settings
from tests.bench.bench_core import submit_all
from tests.bench.broker_cpu import BrokerCpu
from tests.bench.support import WorkerProcess, delete_namespace, new_namespace, settings_for
from tests.bench.systems import BACKLOG, Memory
from tests.bench.tally import Tally

NOOP = "bench.noop"
FAIL_ONCE = {2.0: "bench.fail_once", 1.0: "bench.fail_once_1s", 10.0: "bench.fail_once_10s"}
"""Retry delay -> the task whose policy has it (``noop_tasks.py``)."""
DELAYS_MS = [round(delay * 1000) for delay in FAIL_ONCE]


@dataclass
class _Run:
    settings: Settings
    connection: AbstractRobustConnection
    names: Names
    workers: list[WorkerProcess] = field(default_factory=list)

    async def spawn(self, count: int, concurrency: int) -> list[WorkerProcess]:
        started = [WorkerProcess(self.settings, concurrency) for _ in range(count)]
        for worker in started:
            worker.spawn()
        self.workers += started
        for worker in started:
            await worker.wait_started()
        return started


class RicochetSystem:
    name = "Ricochet"

    def __init__(self, concurrency: int = 64) -> None:
        self.concurrency = concurrency
        self.replay_per_s = 0.0
        self.broker_cpu_s: float | None = None
        """Replay rate of the log the last ``drain`` wrote, read back from the broker."""

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[_Run]:
        """A fresh namespace with its work queue bound; workers spawned in it stop at the end."""
        settings = settings_for(new_namespace())
        connection = await connect(settings, "bench")
        run = _Run(settings, connection, Names(settings.namespace))
        try:
            channel = await publishing_channel(connection)
            await declare_core(channel, settings)
            queue = await declare_queue(channel, work_queue(run.names, settings, DEFAULT_QUEUE))
            for target in (NOOP, *FAIL_ONCE.values()):  # bound as the worker would on start
                await queue.bind(run.names.work, routing_key=target)
            yield run
        finally:
            for worker in run.workers:
                await worker.stop()
            await connection.close()
            await delete_namespace(settings.amqp_url, settings.namespace, DELAYS_MS)

    async def drain(self, executions: int, workers: int) -> float:
        async with self.fresh() as run:
            broker = BrokerCpu.start()
            await submit_all(run.settings, NOOP, executions)
            tally = Tally(executions)
            await tally.follow(run.connection, run.names)
            await run.spawn(workers, self.concurrency)
            await asyncio.wait_for(tally.done.wait(), timeout=max(120.0, executions / 100))
            self.broker_cpu_s = broker.elapsed()
            await tally.stop()
            for worker in run.workers:
                await worker.stop()
            self.replay_per_s = await replay_rate(run.connection, run.names)
            return tally.overall_per_s()

    async def retry_lateness(self, count: int, delay_s: float) -> list[float]:
        async with self.fresh() as run:
            await run.spawn(1, self.concurrency)
            async with Client(run.settings, source="bench") as client:
                handles = await asyncio.gather(
                    *(client.submit(FAIL_ONCE[delay_s]) for _ in range(count))
                )
                await asyncio.gather(*(handle.wait(timeout=delay_s + 60) for handle in handles))
            return (await lateness_by_target(run))[FAIL_ONCE[delay_s]]

    async def mixed_lateness(self, count: int, slow_s: float, fast_s: float) -> list[float]:
        async with self.fresh() as run:
            await run.spawn(1, self.concurrency)
            async with Client(run.settings, source="bench") as client:
                slow = [await client.submit(FAIL_ONCE[slow_s]) for _ in range(count)]
                await _until_retries_scheduled(run, count)
                fast = [await client.submit(FAIL_ONCE[fast_s]) for _ in range(count)]
                await asyncio.gather(*(h.wait(timeout=slow_s + 60) for h in [*slow, *fast]))
            return (await lateness_by_target(run))[FAIL_ONCE[fast_s]]

    async def memory(self, small: int, large: int) -> Memory:
        async with self.fresh() as run:
            (worker,) = await run.spawn(1, self.concurrency)
            tally = Tally(large)
            await tally.follow(run.connection, run.names)
            await _feed(run, tally, 0, small)
            first = worker.rss_mib()
            await _feed(run, tally, small, large)
            await tally.stop()
            return Memory(first, worker.rss_mib())


async def _feed(run: _Run, tally: Tally, done: int, target: int) -> None:
    """Submit no-ops in chunks up to ``target``, at most ``BACKLOG`` waiting; wait for all."""
    while done < target:
        chunk = min(BACKLOG, target - done)
        await submit_all(run.settings, NOOP, chunk)
        done += chunk
        await asyncio.wait_for(tally.until_ended(done - BACKLOG), timeout=120)
    await asyncio.wait_for(tally.until_ended(target), timeout=120)
    await asyncio.sleep(0.5)  # let the worker settle before its memory is read


async def _until_retries_scheduled(run: _Run, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = await read_log(run.connection, run.names)
        scheduled = sum(isinstance(e, RetryScheduled) for en in entries for e in en.events)
        if scheduled >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{count} retries were not scheduled within {timeout} s")


async def lateness_by_target(run: _Run) -> dict[str, list[float]]:
    """Per target: AttemptStarted(attempt 2).at - RetryScheduled.due_at of each execution."""
    entries = await read_log(run.connection, run.names)
    events = [event for entry in entries for event in entry.events]
    target = {e.execution_id: e.target for e in events if isinstance(e, ExecutionRequested)}
    due: dict[str, datetime] = {}
    started: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, RetryScheduled):
            due[event.execution_id] = event.due_at
        elif isinstance(event, AttemptStarted) and event.attempt == 2:
            started[event.execution_id] = event.at
    late: dict[str, list[float]] = {}
    for key in due.keys() & started.keys():
        late.setdefault(target[key], []).append((started[key] - due[key]).total_seconds())
    return late


async def replay_rate(connection: AbstractRobustConnection, names: Names) -> float:
    """Events/s of one follower reading the whole log, decoding every event (as the
    projector and a taking-over supervisor do); from subscribing to the last entry."""
    tail = await tail_offset(connection, names)
    events = 0
    done = asyncio.Event()

    def count(entry: Entry) -> None:
        nonlocal events
        events += len(entry.events)
        if entry.offset >= tail:
            done.set()

    channel = await stream_channel(connection)
    follower = LogFollower(channel, names, count)
    began = time.perf_counter()
    await follower.start("first")
    await asyncio.wait_for(done.wait(), timeout=300)
    elapsed = time.perf_counter() - began
    await follower.stop()
    await channel.close()
    return events / elapsed
