"""Ricochet's core numbers, next to what plain aio-pika does on the same broker.

    .venv/bin/python -m tests.bench.bench_core [--executions 20000] [--retries 200]

(a) no-op executions: submit rate through ``Client.submit``, and the drain rate of
    one worker process over work submitted before it started;
(b) raw aio-pika: confirmed persistent publishes to a quorum queue, and consuming them;
(c) retry lateness: a 2 s retry of many executions at once, against the bare
    TTL + dead-letter mechanism it is built on.

Uses the broker at ``RICOCHET_AMQP_URL``; every part runs in a fresh namespace
(``bench-<hex>``) whose queues and exchanges are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import datetime

import aio_pika

from ricochet.contracts import AttemptStarted, RetryScheduled
from ricochet.engine import Status
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core, declare_queue, work_queue
from ricochet.workers.client.client import Client
from ricochet.workers.log.reader import read_log
from ricochet.workers.runtime.tasks import DEFAULT_QUEUE
from ricochet.workers.settings import Settings
from tests.bench.raw import CHUNK, Rates, publish_then_consume, ttl_lateness
from tests.bench.support import (
    WorkerProcess,
    delete_namespace,
    delete_objects,
    masked,
    new_namespace,
    settings_for,
    summary_ms,
)
from tests.bench.tally import Tally

NOOP = "bench.noop"
FAIL_ONCE = "bench.fail_once"
RETRY_DELAY_S = 2.0  # bench.fail_once's retries=(1, 2.0)
RAW_PREFETCH = 300


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def report_complaints(worker: WorkerProcess) -> None:
    """The worker's warnings and errors, if any, so a bad run does not pass unnoticed."""
    for line in worker.complaints[:5]:
        progress(f"worker said: {line[:300]}")
    if len(worker.complaints) > 5:
        progress(f"... and {len(worker.complaints) - 5} more warning/error lines")


@dataclass(frozen=True, slots=True)
class Drain:
    submit_per_s: float
    drain_per_s: float
    steady_per_s: float
    wall_per_s: float
    failed: int


async def submit_all(settings: Settings, target: str, count: int) -> float:
    """Seconds to submit ``count`` executions, ``CHUNK`` at a time."""
    async with Client(settings, source="bench") as client:
        began = time.perf_counter()
        for start in range(0, count, CHUNK):
            batch = min(CHUNK, count - start)
            await asyncio.gather(*(client.submit(target) for _ in range(batch)))
        return time.perf_counter() - began


async def part_a(executions: int, concurrency: int) -> Drain:
    """Submit everything first (no worker yet), then time one worker draining it."""
    settings = settings_for(new_namespace())
    worker = WorkerProcess(settings, concurrency)
    connection = await connect(settings, "bench")
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        queue = await declare_queue(channel, work_queue(names, settings, DEFAULT_QUEUE))
        await queue.bind(names.work, routing_key=NOOP)  # what the worker binds on start
        progress(f"(a) submitting {executions} executions of {NOOP} in {settings.namespace}")
        submit_s = await submit_all(settings, NOOP, executions)
        tally = Tally(executions)
        await tally.follow(connection, names)
        progress(f"(a) starting one worker (--concurrency {concurrency}), draining")
        worker.spawn()
        await worker.wait_started()
        await asyncio.wait_for(tally.done.wait(), timeout=max(120.0, executions / 100))
        await tally.stop()
    finally:
        await worker.stop()
        report_complaints(worker)
        await connection.close()
        await delete_namespace(settings.amqp_url, settings.namespace)
    return Drain(
        submit_per_s=executions / submit_s,
        drain_per_s=tally.overall_per_s(),
        steady_per_s=tally.steady_per_s(),
        wall_per_s=executions / (tally.done_at - worker.started_at),
        failed=tally.failed,
    )


async def part_b(count: int) -> Rates:
    namespace = new_namespace()
    url = settings_for(namespace).amqp_url
    queue = f"{namespace}.raw"
    progress(f"(b) raw aio-pika: {count} confirmed publishes to quorum queue {queue}, then drain")
    try:
        return await publish_then_consume(url, queue, count, RAW_PREFETCH)
    finally:
        await delete_objects(url, [queue], [])


async def retry_lateness(settings: Settings) -> list[float]:
    """AttemptStarted(2).at - RetryScheduled.due_at, per execution, from the log."""
    connection = await connect(settings, "bench")
    try:
        entries = await read_log(connection, Names(settings.namespace))
    finally:
        await connection.close()
    due: dict[str, datetime] = {}
    started: dict[str, datetime] = {}
    for event in (event for entry in entries for event in entry.events):
        if isinstance(event, RetryScheduled):
            due[event.execution_id] = event.due_at
        elif isinstance(event, AttemptStarted) and event.attempt == 2:
            started[event.execution_id] = event.at
    return [(started[key] - due[key]).total_seconds() for key in due if key in started]


async def part_c(retries: int, concurrency: int) -> tuple[list[float], list[float]]:
    settings = settings_for(new_namespace())
    ns = settings.namespace
    worker = WorkerProcess(settings, concurrency)
    raw = (f"{ns}.raw.wait", f"{ns}.raw.arrived", f"{ns}.raw.dlx")
    delay_ms = round(RETRY_DELAY_S * 1000)
    try:
        worker.spawn()
        await worker.wait_started()
        progress(f"(c) {retries} executions of {FAIL_ONCE} at once in {ns}")
        async with Client(settings, source="bench") as client:
            handles = await asyncio.gather(*(client.submit(FAIL_ONCE) for _ in range(retries)))
            states = await asyncio.gather(*(h.wait(timeout=60) for h in handles))
        failed = [s.execution_id for s in states if s.status is not Status.SUCCEEDED]
        if failed:
            raise RuntimeError(f"{len(failed)} executions of {FAIL_ONCE} did not succeed")
        await worker.stop()
        ricochet = await retry_lateness(settings)
        progress(f"(c) raw floor: {retries} messages with expiration={RETRY_DELAY_S} s")
        floor = await ttl_lateness(settings.amqp_url, *raw, retries, RETRY_DELAY_S)
    finally:
        await worker.stop()
        report_complaints(worker)
        await delete_namespace(
            settings.amqp_url, ns, [delay_ms], extra_queues=raw[:2], extra_exchanges=raw[2:]
        )
    return ricochet, floor


async def server_version(url: str) -> str:
    connection = await aio_pika.connect(url)
    try:
        transport = connection.transport
        properties = transport.connection.server_properties if transport is not None else {}
        version = properties.get("version", "?")
    finally:
        await connection.close()
    return version.decode() if isinstance(version, bytes) else str(version)


def rate(value: float, unit: str) -> str:
    return f"{value:>9,.0f} {unit}"


async def run(executions: int, retries: int, concurrency: int) -> str:
    url = Settings.from_env().amqp_url
    version = await server_version(url)
    drain = await part_a(executions, concurrency)
    raw = await part_b(executions)
    ricochet_late, floor_late = await part_c(retries, concurrency)
    w = 58
    lines = [
        f"Ricochet core benchmark: RabbitMQ {version} at {masked(url)}",
        f"{executions} no-op executions, {retries} retries, one worker --concurrency {concurrency}",
        "",
        f"{'(a) Ricochet, bench.noop':<{w}}",
        f"{'    submit: Client.submit, 500 in flight':<{w}}{rate(drain.submit_per_s, 'exec/s')}",
        f"{'    drain: first AttemptStarted -> last ExecutionSucceeded':<{w}}"
        f"{rate(drain.drain_per_s, 'exec/s')}",
        f"{'    drain, steady: 10th -> 90th percentile of endings':<{w}}"
        f"{rate(drain.steady_per_s, 'exec/s')}",
        f"{'    drain, wall: worker.started -> all seen on the log':<{w}}"
        f"{rate(drain.wall_per_s, 'exec/s')}",
        f"{'(b) raw aio-pika, quorum queue, 200 B persistent':<{w}}",
        f"{'    publish: confirmed, 500 in flight':<{w}}{rate(raw.publish_per_s, 'msg/s')}",
        f"{f'    consume: prefetch {RAW_PREFETCH}, manual ack':<{w}}"
        f"{rate(raw.consume_per_s, 'msg/s')}",
        f"{'    Ricochet drain / raw consume':<{w}}{drain.drain_per_s / raw.consume_per_s:>9.2f}",
        f"{'    Ricochet drain / raw publish':<{w}}{drain.drain_per_s / raw.publish_per_s:>9.2f}",
        f"{f'(c) retry lateness, {retries} at once, {RETRY_DELAY_S:g} s delay':<{w}}"
        "p50 / p99 / max",
        f"{'    Ricochet: AttemptStarted#2.at - RetryScheduled.due_at':<{w}}"
        f"{summary_ms(ricochet_late)}  (n={len(ricochet_late)})",
        f"{'    raw floor: TTL dead-letter arrival - (publish + TTL)':<{w}}"
        f"{summary_ms(floor_late)}  (n={len(floor_late)})",
    ]
    if drain.failed:
        lines.append(f"WARNING: {drain.failed} no-op executions ended failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_core", description=__doc__)
    parser.add_argument("--executions", type=int, default=20_000, help="no-op executions (a, b)")
    parser.add_argument("--retries", type=int, default=200, help="retried executions (c)")
    parser.add_argument("--concurrency", type=int, default=64, help="the worker's --concurrency")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.executions, args.retries, args.concurrency)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
