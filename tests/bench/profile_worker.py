"""Where a draining worker's time goes, per execution: py-spy on a real worker process.

    .venv/bin/python -m tests.bench.profile_worker [--executions 60000] [--seconds 6]

Submits no-ops, starts one ``ricochet worker``, samples its event-loop thread
with py-spy (from the ``bench`` extra) while it drains, and prints the share of
samples and microseconds per execution for each part of the work. A sample
counts for the first part, in the order below, whose functions are on its stack.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.bench.bench_core import submit_all
from tests.bench.ricochet_system import NOOP, RicochetSystem
from tests.bench.tally import Tally

PARTS = (
    ("logging (structlog)", r"structlog/"),
    ("supervisor: decode + fold of the whole log", r"LogFollower\._on_message|Supervisor\."),
    ("publishing (messages, frames, confirms)", r"Exchange\.publish|GroupCommitter\._send"),
    ("AMQP frames out (aiormq writer, socket)", r"Connection\.__writer"),
    ("AMQP frames in (aiormq reader, deliveries)", r"Connection\.__reader|Channel\._reader"),
    ("acks", r"IncomingMessage\.ack|_ack_up_to"),
    ("thread-pool hop of the sync no-op", r"run_in_executor|_write_to_self|_read_from_self"),
    ("attempt: parse, decide, claim, finish", r"AttemptProcessor\.|Worker\._handle"),
)
MAIN_THREAD = "cli.py"
"""Frames of the event loop's thread all start in the CLI."""


def parts_of(samples: str) -> Counter[str]:
    """Samples per part, from py-spy's raw (collapsed stack) output, main thread only."""
    counted: Counter[str] = Counter()
    for line in samples.splitlines():
        stack, _, number = line.rpartition(" ")
        if MAIN_THREAD not in stack:
            continue
        part = next((name for name, pattern in PARTS if re.search(pattern, stack)), None)
        counted[part or "event loop, scheduling and the rest"] += int(number)
    return counted


def report(counted: Counter[str], per_s: float) -> str:
    total = sum(counted.values())
    per_execution_us = 1e6 / per_s
    lines = [f"drain {per_s:,.0f} exec/s: {per_execution_us:,.0f} us of loop time per execution"]
    for name, samples in counted.most_common():
        share = samples / total
        lines.append(f"  {share:6.1%} {share * per_execution_us:7.0f} us  {name}")
    return "\n".join(lines)


def sample(py_spy: str, pid: int, seconds: int) -> str:
    """py-spy's collapsed stacks of ``pid`` over ``seconds``."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds)]
        command += ["--rate", "250", "--format", "raw", "--nonblocking", "-o", out.name]
        subprocess.run(command, check=True, capture_output=True)
        return Path(out.name).read_text()


async def profile(executions: int, seconds: int) -> str:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is missing: pip install -e '.[bench]'")
    system = RicochetSystem()
    async with system.fresh() as run:
        await submit_all(run.settings, NOOP, executions)
        tally = Tally(executions)
        await tally.follow(run.connection, run.names)
        (worker,) = await run.spawn(1, system.concurrency)
        await asyncio.sleep(1.0)  # past the start-up replay
        samples = await asyncio.to_thread(sample, py_spy, worker.pid, seconds)
        await asyncio.wait_for(tally.done.wait(), timeout=max(120.0, executions / 100))
        await tally.stop()
        return report(parts_of(samples), tally.overall_per_s())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.profile_worker", description=__doc__
    )
    parser.add_argument("--executions", type=int, default=60_000)
    parser.add_argument("--seconds", type=int, default=6, help="how long to sample")
    args = parser.parse_args(argv)
    print(asyncio.run(profile(args.executions, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
