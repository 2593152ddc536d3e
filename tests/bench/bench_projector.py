"""Projector and replay figures (issue 5), run on demand:

    .venv/bin/python -m tests.bench.bench_projector [--executions 250000]

Prints: fold rate in-process (decoded events, and from JSON bytes); replay rate
from the broker; projector memory and store size per 100,000 executions; and
restart time with the log holding ``4 x executions`` events, with a stored
snapshot and without one. Runs in a namespace of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika

from ricochet.contracts import AT_MOST_ONCE, Event, decode_batch, encode_batch
from ricochet.engine import RecordSuccess, RequestExecution, StartAttempt, initial, project, run
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import Names, declare_core
from ricochet.workers.log.reader import read_log
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.bench.support import delete_namespace, new_namespace, settings_for
from tests.integration.harness import eventually

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IN_FLIGHT = 400


def history(index: int) -> list[Event]:
    """requested, started, succeeded, ended: what one quick execution leaves."""
    execution_id = f"{index:032x}"
    now = T0 + timedelta(milliseconds=index)
    state = initial(execution_id)
    events: list[Event] = []
    for command in (
        RequestExecution(execution_id, "bench.noop", now),
        StartAttempt(1, "bench:1", AT_MOST_ONCE, now),
        RecordSuccess(1, None, now, "bench:1"),
    ):
        decision, state = run(command, state)
        assert isinstance(decision, tuple), decision
        events.extend(decision)
    return events


def fold_rates(executions: int) -> tuple[float, float]:
    events = [event for i in range(executions) for event in history(i)]
    started = time.perf_counter()
    project(events)
    folded = len(events) / (time.perf_counter() - started)
    messages = [encode_batch(events[i : i + 2]) for i in range(0, len(events), 2)]
    started = time.perf_counter()
    project(event for message in messages for event in decode_batch(message))
    return folded, len(events) / (time.perf_counter() - started)


async def fill_log(settings: Settings, executions: int) -> int:
    """Publish the histories, two events a stream message: the smallest messages a worker
    writes (one attempt at a time; under load group commit puts dozens in one), so the
    replay figure here is the worst case."""
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(Names(settings.namespace).events)
    pending: list[asyncio.Future[object]] = []
    total = 0
    for index in range(executions):
        events = history(index)
        total += len(events)
        for pair in (events[:2], events[2:]):
            message = aio_pika.Message(
                encode_batch(pair), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            pending.append(asyncio.ensure_future(exchange.publish(message, routing_key="")))
        if len(pending) >= IN_FLIGHT:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await connection.close()
    return total


async def replay_rate(settings: Settings, events: int) -> float:
    connection = await connect(settings, "bench")
    started = time.perf_counter()
    entries = await read_log(connection, Names(settings.namespace))
    elapsed = time.perf_counter() - started
    await connection.close()
    assert events == sum(len(entry.events) for entry in entries)
    return events / elapsed


def rss_kb() -> int:
    """Resident memory now (not the peak), from /proc."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def catch_up(settings: Settings, store: Path | None, tail_events: int) -> tuple[float, int]:
    """Seconds from start until the projector holds every execution; and its RSS growth."""
    before = rss_kb()
    projector = Projector(settings, store)
    started = time.perf_counter()
    await projector.start()
    executions = tail_events // 4

    def done() -> bool:
        needed = 0 if projector.resumed_from is not None else tail_events
        return len(projector.projection.executions) >= executions and (
            projector.events_read >= needed
        )

    await eventually(done, timeout=600, every=0.01)
    elapsed = time.perf_counter() - started
    grown_kb = rss_kb() - before
    await projector.stop()
    return elapsed, grown_kb


async def main(executions: int) -> None:
    folded, decoded = fold_rates(min(executions, 100_000))
    settings = settings_for(new_namespace())
    connection = await connect(settings, "bench-setup")
    await declare_core(await publishing_channel(connection), settings)
    await connection.close()
    try:
        started = time.perf_counter()
        events = await fill_log(settings, executions)
        filled = time.perf_counter() - started
        replayed = await replay_rate(settings, events)
        with tempfile.TemporaryDirectory() as directory:
            store = Path(directory) / "projection.sqlite3"
            cold, grown_kb = await catch_up(settings, None, events)
            first, _ = await catch_up(settings, store, events)
            warm, _ = await catch_up(settings, store, events)
            size = store.stat().st_size
    finally:
        await delete_namespace(settings.amqp_url, settings.namespace)
    per_100k = 100_000 / executions
    print(f"fold, decoded events in-process          {folded:>12,.0f} events/s")
    print(f"decode + fold from JSON bytes            {decoded:>12,.0f} events/s")
    print(f"log filled: {events:,} events in {filled:.1f} s ({events / filled:,.0f}/s)")
    print(f"replay from the broker (read_log)        {replayed:>12,.0f} events/s")
    print(f"projector memory per 100k executions     {grown_kb * per_100k / 1024:>12,.0f} MiB")
    print(f"store size per 100k executions           {size * per_100k / 2**20:>12,.1f} MiB")
    print(f"start with {events:,} events, no snapshot  {cold:>12.1f} s")
    print(f"start with an empty store (fold + write) {first:>12.1f} s")
    print(f"start with a snapshot at the tail        {warm:>12.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=250_000)
    asyncio.run(main(parser.parse_args().executions))
