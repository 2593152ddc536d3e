"""What observing costs (issue 12): the no-op drain with metrics off / on / traced.

    .venv/bin/python -m tests.bench.bench_observe [--executions 20000] [--rounds 3]

Each round drains ``executions`` no-ops (submitted first) with one worker
process (``--concurrency 64``), three ways, in turn (each first in one round of
three) so that the machine's other load falls on all three alike: plain; with
``--metrics-port 0`` (every counter and histogram moving; nobody scrapes); and
with the OpenTelemetry SDK recording a span per attempt (``traced_noop_tasks``;
spans dropped by the exporter). Rate = executions / (last end - first start),
from the log, as the suite's row (a).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time

from tests.bench.bench_core import submit_all
from tests.bench.ricochet_system import NOOP, RicochetSystem
from tests.bench.support import REPO, WorkerProcess, ricochet_executable
from tests.bench.tally import Tally

MODES = {
    "off": ("tests.bench.noop_tasks", ()),
    "metrics": ("tests.bench.noop_tasks", ("--metrics-port", "0")),
    "traced": ("tests.bench.traced_noop_tasks", ()),
}


class ObservedWorker(WorkerProcess):
    """A bench worker process running ``module`` with extra flags."""

    def __init__(self, module: str, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.module = module

    def spawn(self) -> None:
        env = {
            **os.environ,
            "RICOCHET_NAMESPACE": self.settings.namespace,
            "RICOCHET_AMQP_URL": self.settings.amqp_url,
            "RICOCHET_LOG_JSON": "true",
        }
        command = [ricochet_executable(), "worker", self.module]
        command += ["--concurrency", str(self.concurrency), "--grace", "5", *self.options]
        self.spawned_at = time.perf_counter()
        self._process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )


async def drain(mode: str, executions: int) -> float:
    """Executions/s of one worker process draining ``executions`` no-ops in ``mode``."""
    module, options = MODES[mode]
    system = RicochetSystem()
    async with system.fresh() as run:
        await submit_all(run.settings, NOOP, executions)
        tally = Tally(executions)
        await tally.follow(run.connection, run.names)
        worker = ObservedWorker(module, run.settings, system.concurrency, options)
        worker.spawn()
        run.workers.append(worker)
        await worker.wait_started()
        await asyncio.wait_for(tally.done.wait(), timeout=max(120.0, executions / 100))
        await tally.stop()
        return tally.overall_per_s()


async def main(executions: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    modes = list(MODES)
    for round_number in range(1, rounds + 1):
        # each mode goes first in turn: a drain slows the one right after it (the broker
        # still trims the last namespace), and that must not fall on one mode only
        turn = (round_number - 1) % len(modes)
        for mode in modes[turn:] + modes[:turn]:
            rate = await drain(mode, executions)
            rates[mode].append(rate)
            print(f"round {round_number} {mode:8} {rate:8.0f} exec/s", flush=True)
    base = statistics.median(rates["off"])
    for mode, values in rates.items():
        median = statistics.median(values)
        cost = (1 - median / base) * 100
        print(f"{mode:8} median {median:8.0f} exec/s  cost {cost:+5.1f}%  runs {values}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.executions, arguments.rounds))
