"""What each broker fault costs under load: the table of issue 15.

    flock -x /tmp/ricochet-broker.lock .venv/bin/python -m tests.bench.bench_faults \\
        [--runs 1] [--once 2000] [--retried 500] [--no-single] [--no-cluster]

For each run and each fault, a fresh batch of the load (``tests/integration/faults.py``:
``retries=0`` executions with a 0.1 s body, and ``retries=(2, 0.5)`` ones whose first
attempt fails, interleaved), two ``ricochet worker --concurrency 16`` processes, the
fault once 15% of the bodies ran, then the counts: ended, stuck, attempts run twice
(from the bodies' own ledger), attempts over 1 + retries, delayed retries due during
the fault and run, how long no attempt started (until work flowed again), until all
ended, and whether a projector that lived through it equals a fresh fold of the log.

Faults on the local broker (a vhost of its own, deleted at the end):
``rabbitmqctl stop_app; sleep 5; start_app`` (this stops the broker for everyone on
the machine: hence ``flock -x``), and ``rabbitmqctl close_all_connections`` for that
vhost. On a 3-node cluster started beside it (``tests/integration/cluster.py``,
stopped at the end whatever happens), with everyone given all three addresses: the
node they are on stopped and brought back, then the node leading the work queue.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

from ricochet.workers import logs
from ricochet.workers.client.client import Client
from tests.bench.supervision import isolated, progress, run_cleanly
from tests.integration import fault_runs, faults
from tests.integration.cluster import local_cluster

SINGLE = ("restart", "close_all_connections")


async def single_broker(load: faults.Load, directory: Path) -> list[faults.Counts]:
    rows = []
    for fault in SINGLE:
        progress(f"{fault} under {load.executions:,} executions")
        async with isolated() as settings, Client(settings) as client:
            work = directory / f"{fault}-{uuid.uuid4().hex[:6]}"
            work.mkdir()
            counts, _ = await fault_runs.single_broker(settings, client, work, fault, load)
        rows.append(counts)
    return rows


async def cluster(load: faults.Load, directory: Path) -> list[faults.Counts]:
    progress("starting a 3-node cluster")
    with local_cluster() as started:
        progress("node stops under load on the cluster")
        work = directory / f"cluster-{uuid.uuid4().hex[:6]}"
        work.mkdir()
        namespace = f"bench-{uuid.uuid4().hex[:10]}"
        rows, notes = await fault_runs.cluster(started, namespace, work, load)
    progress("; ".join(notes))
    return rows


async def main(arguments: argparse.Namespace) -> str:
    load = faults.Load(once=arguments.once, retried=arguments.retried)
    rows: list[faults.Counts] = []
    with tempfile.TemporaryDirectory(prefix="ricochet-bench-faults-") as scratch:
        for run in range(arguments.runs):
            progress(f"run {run + 1} of {arguments.runs}")
            if arguments.single:
                rows += await single_broker(load, Path(scratch))
            if arguments.cluster:
                rows += await cluster(load, Path(scratch))
    return faults.render(rows)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--once", type=int, default=2000, help="retries=0 executions per fault")
    parser.add_argument("--retried", type=int, default=500, help="retries=(2, 0.5) ones")
    parser.add_argument("--no-single", dest="single", action="store_false")
    parser.add_argument("--no-cluster", dest="cluster", action="store_false")
    return parser.parse_args()


if __name__ == "__main__":
    logs.configure("WARNING")  # this process's own lines on stderr: stdout is the table
    print(run_cleanly(main(parse())))
