"""What the supervision benchmarks share (intake, take-over, supervisor memory).

A vhost of its own per run, so everything a run declares goes with it whatever
happens; fleets of ``ricochet worker`` processes with extra flags; triggers
published with plain aio-pika as another service would; and ``LogWatch``, which
reads the log with orjson (as ``Tally`` does) to learn when each execution was
requested, started, lost and ended, by the events' own times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from ricochet.contracts import TERMINAL_TYPES
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core
from ricochet.workers.settings import Settings
from tests.bench.raw import CHUNK
from tests.bench.support import WorkerProcess, delete_namespace, new_namespace
from tests.bench.tally import STARTED, Tally
from tests.broker import can_admin, delete_vhost, rabbitmqctl, with_vhost

REQUESTED = "execution_requested."
"""Prefix of the request event's type, whatever its version."""
FAILED_ATTEMPT = "attempt_failed."
WORKER_LOST = "worker_lost"
NOOP = "bench.noop"
SLEEP = "bench.sleep"


def progress(text: str) -> None:
    """Progress on stderr, so stdout holds only the figures."""
    print(f"  .. {text}", file=sys.stderr, flush=True)


def create_vhost() -> str:
    """A vhost named for the benchmark (``tests.broker``'s are for test runs)."""
    vhost = f"ricochet-bench-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return vhost


def run_cleanly(main: Coroutine[Any, Any, str]) -> str:
    """``asyncio.run``, with SIGTERM (``timeout``, say) handled like Ctrl-C, so the
    clean-up still runs: workers stopped, vhost deleted."""
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    return asyncio.run(main)


@asynccontextmanager
async def isolated() -> AsyncIterator[Settings]:
    """Settings in a fresh vhost (a fresh namespace on a broker we cannot administer),
    removed at the end whatever happened."""
    base = Settings.from_env()
    vhost = await asyncio.to_thread(create_vhost) if can_admin(base.amqp_url) else None
    url = with_vhost(base.amqp_url, vhost) if vhost is not None else base.amqp_url
    settings = Settings.from_env(amqp_url=url, namespace=new_namespace())
    try:
        yield settings
    finally:
        if vhost is not None:
            await asyncio.to_thread(delete_vhost, vhost)
        else:
            await delete_namespace(url, settings.namespace)


def in_namespace(settings: Settings, namespace: str | None = None) -> Settings:
    """The same broker (and vhost), another namespace: one measurement each."""
    return settings.model_copy(update={"namespace": namespace or new_namespace()})


async def declare(settings: Settings) -> Names:
    """Exchanges and queues, as a worker declares them on start: triggers can wait there."""
    connection = await connect(settings, "bench")
    try:
        return await declare_core(await publishing_channel(connection), settings)
    finally:
        await connection.close()


class Fleet:
    """``ricochet worker tests.bench.noop_tasks`` processes with the same flags; stopped
    (SIGTERM, then SIGKILL) at the end whatever happened."""

    def __init__(self, settings: Settings, concurrency: int, options: Sequence[str] = ()) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.options = tuple(options)
        self.workers: list[WorkerProcess] = []

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        for worker in self.workers:
            await worker.stop()

    async def spawn(self, count: int) -> list[WorkerProcess]:
        started = [
            WorkerProcess(self.settings, self.concurrency, self.options) for _ in range(count)
        ]
        for worker in started:
            worker.spawn()
        self.workers += started
        for worker in started:
            await worker.wait_started()
        return started

    async def supervisor(self, timeout: float = 60.0) -> tuple[WorkerProcess, str]:
        """The live worker that most recently logged ``supervisor.active``, and its worker id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [
                (str(line["timestamp"]), worker, str(line.get("worker") or worker_id_of(worker)))
                for worker in self.workers
                if worker.alive()
                for line in log_lines(worker, "supervisor.active")
            ]
            if found:
                _, worker, worker_id = max(found, key=lambda item: item[0])
                return worker, worker_id
            await asyncio.sleep(0.05)
        raise RuntimeError("no worker logged supervisor.active")


def worker_id_of(worker: WorkerProcess) -> str:
    """The id a worker gives itself by default (host:pid), for logs that do not say it."""
    return f"{socket.gethostname()}:{worker.pid}"


def log_lines(worker: WorkerProcess, event: str) -> list[dict[str, object]]:
    """The worker's JSON log lines whose ``event`` is ``event``."""
    lines = []
    for text in worker.read_log().splitlines():
        if f'"{event}"' in text:
            with contextlib.suppress(orjson.JSONDecodeError):
                line = orjson.loads(text)
                if isinstance(line, dict) and line.get("event") == event:
                    lines.append(line)
    return lines


def logged_after(worker: WorkerProcess, event: str, since: float) -> float | None:
    """Seconds from ``since`` (Unix time) to the first ``event`` the worker logged after it."""
    times = [
        datetime.fromisoformat(str(line["timestamp"])).timestamp()
        for line in log_lines(worker, event)
    ]
    later = [at - since for at in times if at >= since]
    return min(later) if later else None


def trigger_body(target: str, key: str | None = None) -> bytes:
    """A trigger.v1 body, as a service in any language would write it."""
    body: dict[str, object] = {"target": target, "args": [], "kwargs": {}}
    if key is not None:
        body["idempotency_key"] = key
    return orjson.dumps(body)


class TriggerPublisher:
    """Plain aio-pika on ``<ns>.triggers``: publisher confirms, ``CHUNK`` in flight.

    Opened ahead of time, so a trigger published "right after" something goes out
    without waiting for a connection.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def __aenter__(self) -> TriggerPublisher:
        self._connection = await aio_pika.connect(self.settings.amqp_url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.get_exchange(self.names.triggers, ensure=False)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish(self, triggers: Sequence[tuple[str, str | None]]) -> None:
        """Publish ``(target, idempotency key)`` pairs; returns when all are confirmed."""
        for start in range(0, len(triggers), CHUNK):
            chunk = triggers[start : start + CHUNK]
            await asyncio.gather(*(self._one(target, key) for target, key in chunk))

    async def _one(self, target: str, key: str | None) -> None:
        assert self._exchange is not None, "use `async with TriggerPublisher(...)`"
        message = aio_pika.Message(
            trigger_body(target, key),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid.uuid4().hex,
        )
        await self._exchange.publish(message, routing_key=target)


class LogWatch(Tally):
    """A ``Tally`` that also keeps, per execution, when it was requested (and with which
    idempotency key), when its first attempt started and on which worker, and when an
    attempt of it was recorded lost; all by the events' ``at``."""

    def __init__(self, expected: int = 1 << 62) -> None:
        super().__init__(expected)
        self.requested_at: dict[str, datetime] = {}
        self.by_key: dict[str, str] = {}
        self.started_at: dict[str, datetime] = {}
        self.started_by: dict[str, str | None] = {}
        self.lost_at: dict[str, datetime] = {}
        self.ended_at: dict[str, datetime] = {}

    def note(self, batch: list[dict[str, object]]) -> None:
        for event in batch:
            self._keep(event)
        super().note(batch)

    def _keep(self, event: dict[str, object]) -> None:
        kind, at, execution_id = event.get("type"), event.get("at"), event.get("execution_id")
        if (
            not isinstance(kind, str)
            or not isinstance(at, str)
            or not isinstance(execution_id, str)
        ):
            return
        when = datetime.fromisoformat(at)
        if kind.startswith(REQUESTED):
            self.requested_at.setdefault(execution_id, when)
            key = event.get("idempotency_key")
            if isinstance(key, str):
                self.by_key.setdefault(key, execution_id)
        elif kind == STARTED and execution_id not in self.started_at:
            self.started_at[execution_id] = when
            worker = event.get("worker")
            self.started_by[execution_id] = worker if isinstance(worker, str) else None
        elif kind.startswith(FAILED_ATTEMPT) and event.get("cause") == WORKER_LOST:
            self.lost_at.setdefault(execution_id, when)
        elif kind in TERMINAL_TYPES:
            self.ended_at.setdefault(execution_id, when)

    def all_started(self, ids: Sequence[str]) -> Callable[[], bool]:
        """A check for ``until``: every one of ``ids`` has started."""
        return lambda: all(i in self.started_at for i in ids)

    async def until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``check()`` holds after some message; raises ``TimeoutError`` naming ``what``."""

        async def wait() -> None:
            while not check():
                self._progress.clear()
                await self._progress.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}") from None


@asynccontextmanager
async def watching(
    settings: Settings, names: Names, expected: int = 1 << 62
) -> AsyncIterator[LogWatch]:
    """A ``LogWatch`` following the log from its next message, on a connection of its own."""
    connection = await aio_pika.connect(settings.amqp_url)
    watch = LogWatch(expected)
    try:
        await watch.follow(connection, names)
        yield watch
        await watch.stop()
    finally:
        await connection.close()


async def fill(settings: Settings, executions: int, names: Names) -> float:
    """Submit ``executions`` no-ops while the workers drain them; seconds until all ended."""
    from tests.bench.bench_core import submit_all

    connection = await aio_pika.connect(settings.amqp_url)
    tally = Tally(executions)
    try:
        await tally.follow(connection, names)
        began = time.perf_counter()
        await submit_all(settings, NOOP, executions)
        await asyncio.wait_for(tally.done.wait(), timeout=max(300.0, executions / 100))
        await tally.stop()
    finally:
        await connection.close()
    return time.perf_counter() - began


async def trigger_all(settings: Settings, keys: Sequence[str | None], names: Names) -> float:
    """Publish one no-op trigger per key (``None``: no key); seconds until all ended."""
    connection = await aio_pika.connect(settings.amqp_url)
    tally = Tally(len(keys))
    try:
        await tally.follow(connection, names)
        began = time.perf_counter()
        async with TriggerPublisher(settings) as publisher:
            await publisher.publish([(NOOP, key) for key in keys])
        await asyncio.wait_for(tally.done.wait(), timeout=max(300.0, len(keys) / 20))
        await tally.stop()
    finally:
        await connection.close()
    return time.perf_counter() - began
