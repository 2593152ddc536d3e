"""How long a killed worker's attempt takes to be recorded as ``worker_lost``.

Run on demand: ``.venv/bin/python -m tests.bench.bench_loss``. For each setting
of ``--heartbeat`` / ``--loss-window`` it starts two workers, submits a long
``retries=0`` task, SIGKILLs the worker running it and measures the time from
the kill to the ``AttemptFailed(worker_lost)`` event's timestamp. It reports
separately whether the killed worker was the active supervisor (the survivor
must then take over and replay the log before judging).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from ricochet.contracts import FailureCause
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.bench.support import delete_namespace
from tests.integration.harness import eventually
from tests.integration.processes import fleet
from tests.integration.test_worker_loss import running_attempt

SETTINGS = ((0.25, 1.0), (0.5, 3.0), (1.0, 10.0))


async def one_trial(heartbeat: float, window: float, kill_supervisor: bool) -> tuple[float, bool]:
    settings = Settings.from_env(namespace=f"bench-loss-{uuid.uuid4().hex[:8]}")
    options = ("--heartbeat", str(heartbeat), "--loss-window", str(window))
    with tempfile.TemporaryDirectory() as directory:
        async with Client(settings) as client, fleet(settings, Path(directory)) as workers:
            only_supervises = () if kill_supervisor else ("--queues", "elsewhere")
            first = await workers.start(*options, *only_supervises)
            await asyncio.sleep(2 * heartbeat)
            await workers.start(*options)
            handle = await client.submit("p.sleepy_once", [300])
            state = await eventually(lambda: running_attempt(client, handle.id, 1), every=0.01)
            victim = workers.by_worker_id(state.attempts[-1].worker)
            victim.signal(signal.SIGKILL)
            killed_at = time.time()
            final = await handle.wait(timeout=window + 60)
    await delete_namespace(settings.amqp_url, settings.namespace)
    assert final.cause is FailureCause.WORKER_LOST
    ended = final.attempts[0].ended_at
    assert ended is not None
    return ended.timestamp() - killed_at, victim is first


async def main(trials: int) -> None:
    print(f"{'heartbeat':>9} {'window':>6} {'killed':>10} {'detection s (each)':<30} median")
    print(f"{'':>9} {'':>6} {'':>10} (time from SIGKILL to AttemptFailed(worker_lost))")
    for heartbeat, window in SETTINGS:
        rows: dict[bool, list[float]] = {True: [], False: []}
        for trial in range(2 * trials):
            detection, was_supervisor = await one_trial(heartbeat, window, trial % 2 == 0)
            rows[was_supervisor].append(detection)
        for was_supervisor, times in rows.items():
            if times:
                who = "supervisor" if was_supervisor else "other"
                each = " ".join(f"{t:.2f}" for t in times)
                print(
                    f"{heartbeat:>9} {window:>6} {who:>10} {each:<30}"
                    f" {statistics.median(times):.2f}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4)
    asyncio.run(main(parser.parse_args().trials))
