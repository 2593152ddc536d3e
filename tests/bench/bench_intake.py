"""Trigger intake beside ``Client.submit`` and a raw consume, in one run on one broker.

    .venv/bin/python -m tests.bench.bench_intake [--executions 10000]

With 1 and then 2 ``ricochet worker`` processes (``--concurrency 64``) already
running, N no-op executions are started two ways, each in a fresh namespace:
``Client.submit`` (500 in flight), and JSON triggers published to ``<ns>.triggers``
with plain aio-pika (publisher confirms, 500 in flight, routing key = target,
every 4th with an idempotency key of its own), as another service would.

requested/s = N / (last ``ExecutionRequested.at`` - start of publishing): how fast
requests reach the log. drained/s = N / (last terminal event's ``at`` - start of
publishing): the whole drain, end to end. Beside them, plain aio-pika's confirmed
publish and consume rates on a quorum queue. Target (issue 10): triggers >= 0.8x
submit. Everything runs in a vhost of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from ricochet.workers.amqp.topology import Names
from ricochet.workers.settings import Settings
from tests.bench.bench_core import submit_all
from tests.bench.raw import Rates, publish_then_consume
from tests.bench.supervision import (
    NOOP,
    Fleet,
    TriggerPublisher,
    declare,
    in_namespace,
    isolated,
    progress,
    run_cleanly,
    watching,
)
from tests.bench.support import delete_namespace, delete_objects

CONCURRENCY = 64
KEYED_EVERY = 4
RAW_PREFETCH = 300
TARGET_RATIO = 0.8
PATHS = ("submit", "triggers")


@dataclass(frozen=True, slots=True)
class Intake:
    path: str
    workers: int
    requested_per_s: float
    drained_per_s: float
    failed: int


def trigger_keys(count: int) -> list[str | None]:
    """Every ``KEYED_EVERY``-th trigger carries a key of its own; the rest none."""
    run = uuid.uuid4().hex[:8]
    return [f"intake-{run}-{i}" if i % KEYED_EVERY == 0 else None for i in range(count)]


async def warm_up(settings: Settings, names: Names) -> None:
    """One keyed trigger, started and ended: a supervisor is active and caught up, so the
    measurement does not include the workers' start."""
    key = f"warm-up-{uuid.uuid4().hex}"
    async with watching(settings, names) as watch, TriggerPublisher(settings) as publisher:
        await publisher.publish([(NOOP, key)])
        await watch.until(lambda: watch.by_key.get(key, "") in watch.ended_at, 120, "warm-up")


async def send(path: str, settings: Settings, count: int) -> None:
    if path == "submit":
        await submit_all(settings, NOOP, count)
        return
    async with TriggerPublisher(settings) as publisher:
        await publisher.publish([(NOOP, key) for key in trigger_keys(count)])


def rate(count: int, began: float, times: dict[str, datetime]) -> float:
    return count / (max(times.values()).timestamp() - began)


async def measure(base: Settings, path: str, count: int, workers: int) -> Intake:
    """``count`` no-ops started through ``path`` with ``workers`` workers running."""
    settings = in_namespace(base)
    names = await declare(settings)
    progress(f"{count:,} no-ops through {path}, {workers} worker(s), in {settings.namespace}")
    try:
        async with Fleet(settings, CONCURRENCY) as fleet:
            await fleet.spawn(workers)
            await warm_up(settings, names)
            async with watching(settings, names, count) as watch:
                began = time.time()
                await send(path, settings, count)
                await asyncio.wait_for(watch.done.wait(), timeout=max(300.0, count / 20))
        requested = rate(count, began, watch.requested_at)
        return Intake(path, workers, requested, rate(count, began, watch.ended_at), watch.failed)
    finally:
        await delete_namespace(settings.amqp_url, settings.namespace)


async def raw_rates(base: Settings, count: int) -> Rates:
    queue = f"{base.namespace}.raw"
    progress(f"raw aio-pika: {count:,} confirmed publishes to a quorum queue, then consume")
    try:
        return await publish_then_consume(base.amqp_url, queue, count, RAW_PREFETCH)
    finally:
        await delete_objects(base.amqp_url, [queue], [])


def whole(value: float) -> str:
    return f"{value:,.0f}"


def report(count: int, raw: Rates, results: list[Intake]) -> str:
    lines = [
        f"Trigger intake vs Client.submit: {count:,} no-ops, workers --concurrency {CONCURRENCY};"
        f" every {KEYED_EVERY}th trigger keyed",
        f"raw aio-pika, quorum queue: publish {whole(raw.publish_per_s)} msg/s (confirmed,"
        f" 500 in flight), consume {whole(raw.consume_per_s)} msg/s (prefetch {RAW_PREFETCH})",
        "",
        f"{'workers':>7}  {'path':<16}{'requested/s':>12}{'drained/s':>11}{'drained/raw':>13}",
    ]
    for workers in sorted({r.workers for r in results}):
        by_path = {r.path: r for r in results if r.workers == workers}
        for r in by_path.values():
            lines.append(
                f"{workers:>7}  {r.path:<16}{whole(r.requested_per_s):>12}"
                f"{whole(r.drained_per_s):>11}{r.drained_per_s / raw.consume_per_s:>13.2f}"
                + (f"   ({r.failed} ended failed)" if r.failed else "")
            )
        lines.append(ratio_line(workers, by_path))
    return "\n".join(lines)


def ratio_line(workers: int, by_path: dict[str, Intake]) -> str:
    triggers, submit = by_path["triggers"], by_path["submit"]
    requested = triggers.requested_per_s / submit.requested_per_s
    drained = triggers.drained_per_s / submit.drained_per_s
    verdict = "met" if drained >= TARGET_RATIO else "MISSED"
    return (
        f"{workers:>7}  {'triggers/submit':<16}{requested:>12.2f}{drained:>11.2f}"
        f"{'':>13}   target >= {TARGET_RATIO}: {verdict}"
    )


async def run(count: int) -> str:
    async with isolated() as base:
        raw = await raw_rates(base, count)
        results = [
            await measure(base, path, count, workers) for workers in (1, 2) for path in PATHS
        ]
    return report(count, raw, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_intake", description=__doc__)
    parser.add_argument("--executions", type=int, default=10_000, help="no-ops per measurement")
    args = parser.parse_args(argv)
    print(run_cleanly(run(args.executions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
