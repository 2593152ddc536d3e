"""Helpers for integration tests: workers in-process, the log as a list, dead letters."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import FieldValue

from ricochet.contracts import Event, event_id
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core, declare_queue, work_queue
from ricochet.workers.log.history import read_events
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.runtime.tasks import Task
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings
from tests.unit import builders


@asynccontextmanager
async def running_worker(
    settings: Settings, tasks: Sequence[Task[..., Any]], **options: Any
) -> AsyncIterator[Worker]:
    """A worker on this event loop, stopped (with a short grace) when the block ends."""
    worker = Worker(settings, tasks, **options)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop(grace_s=5.0)


async def declare_topology(settings: Settings) -> None:
    """What ``ricochet topology`` does at deploy: needed first by a test whose only process
    is a reader (a projector), since readers never declare anything."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        await declare_core(await connection.channel(), settings)
    finally:
        await connection.close()


async def log_events(settings: Settings, execution_id: str | None = None) -> list[Event]:
    """Every event now on the stream, in order; optionally one execution's only."""
    events = await read_events(settings, "test-reader")
    if execution_id is None:
        return events
    return [event for event in events if event.execution_id == execution_id]


async def eventually(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.1) -> Any:
    """Poll an async or sync check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


async def dead_letters(
    settings: Settings, expected: int, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    """Take ``expected`` messages from the dead-letter queue (acked), waiting for them."""
    connection = await aio_pika.connect(settings.amqp_url)
    taken: list[AbstractIncomingMessage] = []
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(Names(settings.namespace).dead, ensure=False)
        deadline = time.monotonic() + timeout
        while len(taken) < expected and time.monotonic() < deadline:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
            else:
                taken.append(message)
    finally:
        await connection.close()
    return taken


def types_of(events: Sequence[Event]) -> list[str]:
    return [event.type for event in events]


async def bind_target(settings: Settings, target: str, queue: str = "default") -> None:
    """Declare a work queue and bind ``target`` to it, as a worker would, without a worker:
    work can then be queued before any worker starts."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        names = Names(settings.namespace)
        declared = await declare_queue(channel, work_queue(names, settings, queue))
        await declared.bind(names.work, routing_key=target)
    finally:
        await connection.close()


REPO = Path(__file__).resolve().parents[2]


async def run_cli(env: Mapping[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """``python -m ricochet --log-json ARGS`` as a user runs it, from the repository, with
    exactly ``env``; returns the exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ricochet",
        "--log-json",
        *args,
        cwd=REPO,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment with ``settings``' broker and namespace (and ``extra``)."""
    return {
        **os.environ,
        "RICOCHET_AMQP_URL": settings.amqp_url,
        "RICOCHET_NAMESPACE": settings.namespace,
        **extra,
    }


def opening(execution_id: str, attempt: int, target: str) -> list[Event]:
    """What the log holds when ``attempt`` is open: its request, and for a retry the
    attempts before it, started, failed and scheduled again."""
    events: list[Event] = [
        builders.requested(0).model_copy(
            update={
                "execution_id": execution_id,
                "event_id": event_id(execution_id, 0, "requested"),
                "target": target,
                "args": (),
                "kwargs": {},
            }
        )
    ]
    for earlier in range(1, attempt):
        for made, kind in (
            (builders.started(earlier, earlier), "started"),
            (builders.failed(earlier, earlier), "failed"),
            (builders.retry_scheduled(earlier, earlier, 0), "retry"),
        ):
            fields = {
                "execution_id": execution_id,
                "event_id": event_id(execution_id, earlier, kind),
            }
            events.append(made.model_copy(update=fields))
    return events


async def record_opening(
    settings: Settings, execution_id: str, attempt: int = 1, target: str = "t.counted"
) -> None:
    """Record (as a requester and earlier workers would have) what opens ``attempt``."""
    connection = await connect(settings, "test")
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        recorder = await EventRecorder.open(channel, names)
        await recorder.record(opening(execution_id, attempt, target))
    finally:
        await connection.close()


async def publish_raw_work(
    settings: Settings, body: bytes, headers: dict[str, FieldValue], queue: str = "default"
) -> None:
    """Straight into a work queue through the default exchange, headers as given: as any
    producer could, a buggy or a hostile one."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        message = aio_pika.Message(
            body, headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        name = Names(settings.namespace).work_queue(queue)
        await channel.default_exchange.publish(message, routing_key=name, mandatory=True)
    finally:
        await connection.close()
