"""Supervisor memory: RSS of the worker holding the active supervisor, after a take-over.

    .venv/bin/python -m tests.bench.bench_supervisor_memory [--executions 200000] [--keys 100000]

Two workloads, each in a vhost of its own, with two workers (``--heartbeat 0.5
--loss-window 3``): N no-ops submitted through ``Client.submit`` and drained; then
K no-op triggers, each with an idempotency key of its own. Once all have ended, the
active supervisor's worker is SIGKILLed and the other takes over, rebuilding its
state from the broker; when a trigger published after the kill has started, the
new supervisor's VmRSS (``/proc/PID/status``) is read. Beside it: the killed
supervisor's RSS just before the kill (it folded everything live), the other
worker's at that time (it drained as much, but did not supervise), and a fresh
worker's, started in the same namespace after the take-over.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from dataclasses import dataclass

from ricochet.workers.amqp.topology import Names
from ricochet.workers.settings import Settings
from tests.bench.bench_takeover import (
    CONCURRENCY,
    OPTIONS,
    kill_supervisor,
    until_taken_over,
)
from tests.bench.supervision import (
    Fleet,
    declare,
    fill,
    isolated,
    progress,
    run_cleanly,
    trigger_all,
    watching,
)

SETTLE_S = 2.0
"""Pause before reading a worker's RSS, so it is not caught mid-burst."""


@dataclass(frozen=True, slots=True)
class Rss:
    """MiB of resident memory, per role, after one workload."""

    workload: str
    count: int
    supervisor_before: float
    other_before: float
    supervisor_after: float
    fresh: float

    def per_item_bytes(self) -> float:
        """What the new supervisor holds above a fresh worker, per execution or key."""
        return (self.supervisor_after - self.fresh) * 1024 * 1024 / self.count


async def load(workload: str, count: int, settings: Settings, names: Names) -> None:
    if workload == "executions":
        progress(f"{count:,} no-ops submitted, 2 workers draining")
        await fill(settings, count, names)
        return
    run = uuid.uuid4().hex[:8]
    progress(f"{count:,} triggers with distinct idempotency keys, 2 workers draining")
    await trigger_all(settings, [f"memory-{run}-{i}" for i in range(count)], names)


async def one(workload: str, count: int) -> Rss:
    async with isolated() as settings, Fleet(settings, CONCURRENCY, OPTIONS) as fleet:
        names = await declare(settings)
        await fleet.spawn(2)
        await load(workload, count, settings, names)
        await asyncio.sleep(SETTLE_S)
        victim, _ = await fleet.supervisor()
        other = next(w for w in fleet.workers if w is not victim)
        before, other_before = victim.rss_mib(), other.rss_mib()
        async with watching(settings, names) as watch:
            kill = await kill_supervisor(fleet, watch, with_sleeper=False)
            await until_taken_over(watch, kill)
        await asyncio.sleep(SETTLE_S)
        after = kill.survivor.rss_mib()
        (fresh,) = await fleet.spawn(1)
        await asyncio.sleep(SETTLE_S)
        return Rss(workload, count, before, other_before, after, fresh.rss_mib())


def report(results: list[Rss]) -> str:
    lines = [
        "Supervisor memory (VmRSS, MiB); 2 workers --concurrency 64, then a take-over",
        "",
        f"{'workload':<34}{'sup. before':>12}{'other':>8}{'sup. after':>12}{'fresh':>8}"
        f"{'B/item':>9}",
    ]
    for r in results:
        what = (
            f"{r.count:,} executions in the log"
            if r.workload == "executions"
            else f"{r.count:,} distinct idempotency keys"
        )
        lines.append(
            f"{what:<34}{r.supervisor_before:>12.1f}{r.other_before:>8.1f}"
            f"{r.supervisor_after:>12.1f}{r.fresh:>8.1f}{r.per_item_bytes():>9.0f}"
        )
    lines += [
        "",
        "sup. before: the active supervisor's worker just before it was killed (folded live);",
        "other: the second worker then (drained as much, did not supervise); sup. after: that",
        "worker once it had taken over; fresh: a worker started after the take-over;",
        "B/item: (sup. after - fresh) per execution or key.",
    ]
    return "\n".join(lines)


async def run(executions: int, keys: int) -> str:
    results = []
    for workload, count in (("executions", executions), ("keys", keys)):
        if count > 0:
            results.append(await one(workload, count))
            progress(report(results[-1:]))
    return report(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_supervisor_memory", description=__doc__
    )
    parser.add_argument("--executions", type=int, default=200_000, help="0 to skip")
    parser.add_argument("--keys", type=int, default=100_000, help="0 to skip")
    args = parser.parse_args(argv)
    print(run_cleanly(run(args.executions, args.keys)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
