"""Lateness of delayed retries: classic delay queues (before) beside quorum ones (now).

    .venv/bin/python -m tests.bench.bench_delay_queues [--runs 3]

Each run, for each kind of delay queue, in a fresh namespace: Ricochet's delay path
bare, as ``Settler.schedule`` uses it: persistent messages with the attempt and
due-time headers, ``expiration`` = time left until due, published (confirmed, all in
flight) to the ``<ns>.delayq`` headers exchange, one queue per delay value, which
dead-letters to ``<ns>.work`` and on to a consumed quorum work queue. Lateness =
arrival - due time. Cases: 200 retries at once due 2 s later; and 100 due 10 s
later, then, once those are queued, 100 due 1 s later (the 1 s group must not wait
behind the 10 s one). ``classic`` is the queue main declared before (classic, TTL
dead-lettering at most once); ``quorum`` is ``ricochet.workers.amqp.topology.delay_queue``.
Everything runs in a vhost of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from ricochet.contracts import ATTEMPT_HEADER, DUE_AT_HEADER
from ricochet.workers.amqp.topology import (
    DELAY_HEADER,
    Names,
    QueueSpec,
    declare_exchanges,
    declare_queue,
    delay_expiry_ms,
    delay_queue,
    work_queue,
)
from ricochet.workers.settings import Settings
from tests.bench.supervision import in_namespace, isolated, progress, run_cleanly
from tests.bench.support import summary_ms

TARGET = "bench.delayed"
KINDS = ("classic", "quorum")


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    groups: tuple[tuple[int, float], ...]  # (count, delay s), published one group after another
    measured: int  # index of the group whose lateness is reported


CASES = (
    Case("200 at once, due 2 s", ((200, 2.0),), 0),
    Case("100 due 10 s, then 100 due 1 s: the 1 s group", ((100, 10.0), (100, 1.0)), 1),
)


def classic_delay_queue(names: Names, delay_ms: int) -> QueueSpec:
    """The delay queue as main declared it before: classic, dead-lettering at most once."""
    spec = delay_queue(names, delay_ms)
    arguments = {"x-dead-letter-exchange": names.work, "x-expires": delay_expiry_ms(delay_ms)}
    return QueueSpec(spec.name, arguments, spec.bind_to, spec.binding_key, spec.binding_arguments)


class Arrivals:
    """Lateness (s) of each message reaching the work queue, by delay (ms)."""

    def __init__(self, expected: int) -> None:
        self.late: dict[int, list[float]] = {}
        self._expected = expected
        self._count = 0
        self.done = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        arrived_ms = time.time() * 1000
        await message.ack()
        headers = message.headers or {}
        due_ms = int(headers[DUE_AT_HEADER])  # type: ignore[arg-type]
        delay_ms = int(headers[DELAY_HEADER])  # type: ignore[arg-type]
        self.late.setdefault(delay_ms, []).append((arrived_ms - due_ms) / 1000)
        self._count += 1
        if self._count >= self._expected:
            self.done.set()


async def publish_retries(exchange: AbstractExchange, count: int, delay_s: float) -> None:
    """``count`` retries due ``delay_s`` from now, all in flight, TTL = time left until due."""
    due_ms = round((time.time() + delay_s) * 1000)

    async def one() -> None:
        headers: dict[str, Any] = {
            ATTEMPT_HEADER: 2,
            DUE_AT_HEADER: due_ms,
            DELAY_HEADER: round(delay_s * 1000),
        }
        remaining = max(0.001, due_ms / 1000 - time.time())
        message = aio_pika.Message(
            b"{}",
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
            expiration=remaining,
        )
        await exchange.publish(message, routing_key=TARGET)

    await asyncio.gather(*(one() for _ in range(count)))


async def declare_path(channel: AbstractChannel, settings: Settings, kind: str, case: Case) -> None:
    names = Names(settings.namespace)
    await declare_exchanges(channel, names)
    work = await declare_queue(channel, work_queue(names, settings, "default"))
    await work.bind(names.work, routing_key=TARGET)
    for _, delay_s in case.groups:
        delay_ms = round(delay_s * 1000)
        make = classic_delay_queue if kind == "classic" else delay_queue
        await declare_queue(channel, make(names, delay_ms))


async def measure(settings: Settings, kind: str, case: Case) -> list[float]:
    """One case through one kind of delay queue: lateness of the measured group."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=300)
        await declare_path(channel, settings, kind, case)
        names = Names(settings.namespace)
        arrivals = Arrivals(sum(count for count, _ in case.groups))
        work = await channel.get_queue(names.work_queue("default"), ensure=False)
        tag = await work.consume(arrivals.on_message, no_ack=False)
        delay_exchange = await channel.get_exchange(names.delay, ensure=False)
        for count, delay_s in case.groups:
            await publish_retries(delay_exchange, count, delay_s)
        longest = max(delay_s for _, delay_s in case.groups)
        await asyncio.wait_for(arrivals.done.wait(), timeout=longest + 60)
        await work.cancel(tag)
        await asyncio.sleep(0.1)  # let the last handlers return before the channel closes
        await channel.close()
    finally:
        await connection.close()
    return arrivals.late[round(case.groups[case.measured][1] * 1000)]


async def main(runs: int) -> str:
    results: dict[tuple[str, str], list[float]] = {}
    async with isolated() as settings:
        for run in range(runs):
            for case in CASES:
                for kind in KINDS:
                    progress(f"run {run + 1}/{runs}: {kind}, {case.name}")
                    late = await measure(in_namespace(settings), kind, case)
                    results.setdefault((case.name, kind), []).extend(late)
    return render(results, runs)


def render(results: dict[tuple[str, str], list[float]], runs: int) -> str:
    lines = [f"Delayed retry lateness, p50 / p99 / max ({runs} run(s), samples pooled)"]
    width = max(len(case.name) for case in CASES)
    for case in CASES:
        for kind in KINDS:
            late = results[(case.name, kind)]
            early = sum(1 for value in late if value < 0)
            note = f", {early} early" if early else ""
            lines.append(f"  {case.name:<{width}}  {kind:<7}  {summary_ms(late)}{note}")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1, help="repeat both kinds (default 1)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(run_cleanly(main(parse().runs)))
