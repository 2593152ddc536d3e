"""Reply latency for a Node client beside ``submit`` + wait, for the same no-op work.

    .venv/bin/python -m tests.bench.bench_replies [--executions 1000]

One ``ricochet worker tests.bench.noop_tasks`` (``--concurrency 64``) in a vhost of
its own. Then:

- **replies**: ``tests/interop/interop.mjs`` (Node, amqplib) publishes N triggers of
  ``bench.noop`` with ``reply_to`` at once and waits for every reply; latency = when
  Node received the reply - the execution's end (``ended_at`` in the reply).
- **submit --wait**: ``Client.submit`` + ``handle.result()`` (what ``ricochet submit
  --wait`` runs) for N executions at once; latency = when ``result()`` returned - the
  execution's end (its terminal event's ``at``, read from the log afterwards).

Both clocks are this machine's. Prints p50/p99/max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

from ricochet.contracts import TERMINAL_TYPES
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.log.reader import Entry, scan_log
from ricochet.workers.settings import Settings
from tests.bench.supervision import NOOP, Fleet, declare, isolated, progress, run_cleanly

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
CONCURRENCY = 64


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def line(name: str, values: list[float]) -> str:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    worst = max(values)
    return (
        f"{name:<16} n={len(values):<6} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {worst:7.1f} ms"
    )


async def node_replies(settings: Settings, executions: int) -> list[float]:
    """Latencies (ms) as Node saw them: receipt of each reply - the execution's end."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed")
    if not (INTEROP / "node_modules" / "ajv").is_dir():
        await asyncio.to_thread(
            subprocess.run, ["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True
        )
    process = await asyncio.create_subprocess_exec(
        node, str(INTEROP / "interop.mjs"), "--url", settings.amqp_url,
        "--namespace", settings.namespace, "--schemas", str(ROOT / "contracts" / "schemas"),
        "--target", NOOP, "--no-args", "--count", str(executions), "--latencies",
        "--prefix", f"bench-{uuid.uuid4().hex[:8]}-", "--timeout-s", "600",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"interop.mjs failed: {out.decode()[-2000:]}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    return [float(v) for v in summary["latencies_ms"]]


async def submit_and_wait(settings: Settings, executions: int) -> list[float]:
    """Latencies (ms): ``result()`` returning - the execution's end on the log."""
    returned: dict[str, float] = {}
    async with Client(settings, source="bench") as client:

        async def one() -> None:
            handle = await client.submit(NOOP)
            await handle.result(timeout=600)
            returned[handle.id] = time.time()

        await asyncio.gather(*(one() for _ in range(executions)))
    ends = await terminal_times(settings, set(returned))
    return [(returned[i] - ends[i]) * 1000 for i in returned if i in ends]


async def terminal_times(settings: Settings, wanted: set[str]) -> dict[str, float]:
    ends: dict[str, float] = {}

    def keep(entry: Entry) -> None:
        for raw in entry.raw:
            if not isinstance(raw, dict) or raw.get("type") not in TERMINAL_TYPES:
                continue
            if raw.get("execution_id") in wanted:
                at = datetime.fromisoformat(str(raw["at"]))
                ends[str(raw["execution_id"])] = at.timestamp()

    connection = await connect(settings, "bench")
    try:
        await scan_log(connection, Names(settings.namespace), "first", keep, raw=True)
    finally:
        await connection.close()
    return ends


async def where_the_time_goes(settings: Settings) -> dict[str, list[float]]:
    """From the log: each reply's ``reply_sent`` time - its execution's end (what the
    supervisor adds), and how long the intake took to record every trigger's request."""
    ends: dict[str, float] = {}
    sent: dict[str, float] = {}
    requested: list[float] = []

    def keep(entry: Entry) -> None:
        for raw in entry.raw:
            if not isinstance(raw, dict):
                continue
            at = datetime.fromisoformat(str(raw["at"])).timestamp()
            if raw.get("type") in TERMINAL_TYPES:
                ends[str(raw["execution_id"])] = at
            elif raw.get("type") == "reply_sent.v1":
                sent.setdefault(str(raw["execution_id"]), at)
            elif raw.get("type") == "execution_requested.v2":
                requested.append(at)

    connection = await connect(settings, "bench")
    try:
        await scan_log(connection, Names(settings.namespace), "first", keep, raw=True)
    finally:
        await connection.close()
    delays = [(sent[i] - ends[i]) * 1000 for i in sent if i in ends]
    return {"sent": delays, "intake_s": [max(requested) - min(requested)]}


async def main(executions: int) -> str:
    async with isolated() as settings, Fleet(settings, CONCURRENCY) as fleet:
        await declare(settings)
        await fleet.spawn(1)
        progress(f"replies: {executions} triggers with reply_to from Node")
        replies = await node_replies(settings, executions)
        where = await where_the_time_goes(settings)
        progress(f"submit + wait: {executions} executions from the Python client")
        waits = await submit_and_wait(settings, executions)
    return "\n".join(
        [
            f"end of execution -> caller knows, {executions} no-op executions at once, one worker:",
            line("reply (Node)", replies),
            line("submit --wait", waits),
            line("  end->reply_sent", where["sent"]),
            f"  triggers taken in: {where['intake_s'][0]:.2f} s (first to last request on the log)",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    print(run_cleanly(main(parser.parse_args().executions)))
    sys.exit(0)
