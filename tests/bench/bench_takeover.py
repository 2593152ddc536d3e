"""Take-over time: SIGKILL the active supervisor's worker with N executions in the log.

    .venv/bin/python -m tests.bench.bench_takeover [--sizes 20000 200000]

Per size, in a vhost of its own: two workers (``--heartbeat 0.5 --loss-window 3``)
drain N no-ops submitted through ``Client.submit`` while they run, so the log holds
N executions. Then ``bench.sleep`` tasks are submitted until one runs on the worker
that holds the active supervisor (the last to log ``supervisor.active``); that
worker is SIGKILLed, and a trigger is published right after. From the kill, by the
events' own times: the trigger's ``ExecutionRequested`` and ``AttemptStarted``, and
the lost attempt's ``AttemptFailed(worker_lost)``; from the survivor's log, when it
logged ``supervisor.active`` and ``supervisor.caught_up``.

Targets (issue 10), at every size: the trigger starts within 3 s of the kill; the
lost attempt is recorded within loss window + heartbeat + 1 s (4.5 s).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from ricochet.workers.client.client import Client
from tests.bench.supervision import (
    NOOP,
    SLEEP,
    Fleet,
    LogWatch,
    TriggerPublisher,
    declare,
    fill,
    isolated,
    logged_after,
    progress,
    run_cleanly,
    watching,
)
from tests.bench.support import WorkerProcess

HEARTBEAT_S = 0.5
LOSS_WINDOW_S = 3.0
OPTIONS = ("--heartbeat", str(HEARTBEAT_S), "--loss-window", str(LOSS_WINDOW_S))
CONCURRENCY = 64
SLEEP_S = 8.0
"""Long enough to be running at the kill; the survivor's sleepers just finish."""
TRIGGER_TARGET_S = 3.0
LOST_TARGET_S = LOSS_WINDOW_S + HEARTBEAT_S + 1.0
PATIENCE_S = 600.0
"""How long to wait for the take-over before giving up on a size."""


@dataclass(frozen=True, slots=True)
class Kill:
    """One SIGKILL of the active supervisor's worker, and what was sent around it."""

    killed_at: float
    victim: WorkerProcess
    survivor: WorkerProcess
    trigger_key: str
    lost_ids: list[str]


@dataclass(frozen=True, slots=True)
class TakeOver:
    """Seconds from the kill to each milestone (None: not seen in the survivor's log)."""

    executions: int
    fill_s: float
    requested_s: float
    started_s: float
    lost_s: float
    active_s: float | None
    caught_up_s: float | None


async def sleepers_on(
    client: Client, watch: LogWatch, worker_id: str, rounds: int = 6
) -> list[str]:
    """Submit pairs of ``bench.sleep`` until one runs on ``worker_id``; those executions."""
    for _ in range(rounds):
        ids = [(await client.submit(SLEEP, [SLEEP_S])).id for _ in range(2)]
        await watch.until(watch.all_started(ids), 60, "sleepers start")
        mine = [i for i in ids if watch.started_by.get(i) == worker_id]
        if mine:
            return mine
    raise RuntimeError(f"no bench.sleep ran on {worker_id} in {rounds} rounds")


async def kill_supervisor(fleet: Fleet, watch: LogWatch, *, with_sleeper: bool) -> Kill:
    """SIGKILL the worker holding the active supervisor (while one of its attempts runs,
    ``with_sleeper``), then publish a keyed no-op trigger at once."""
    victim, victim_id = await fleet.supervisor()
    survivor = next(w for w in fleet.workers if w.alive() and w is not victim)
    key = f"takeover-{uuid.uuid4().hex}"
    async with (
        Client(fleet.settings, source="bench") as client,
        TriggerPublisher(fleet.settings) as publisher,
    ):
        lost = await sleepers_on(client, watch, victim_id) if with_sleeper else []
        victim.kill()
        killed_at = time.time()
        await publisher.publish([(NOOP, key)])
    progress(f"killed {victim_id} (the active supervisor); trigger {key} published")
    return Kill(killed_at, victim, survivor, key, lost)


async def until_taken_over(watch: LogWatch, kill: Kill) -> None:
    """Until the trigger's execution started and every lost attempt is recorded."""

    def done() -> bool:
        execution = watch.by_key.get(kill.trigger_key)
        lost = all(i in watch.lost_at for i in kill.lost_ids)
        return execution is not None and execution in watch.started_at and lost

    await watch.until(done, PATIENCE_S, "the trigger started and the lost attempt recorded")


def since(kill: Kill, at: datetime) -> float:
    return at.timestamp() - kill.killed_at


def figures(executions: int, fill_s: float, watch: LogWatch, kill: Kill) -> TakeOver:
    execution = watch.by_key[kill.trigger_key]
    return TakeOver(
        executions=executions,
        fill_s=fill_s,
        requested_s=since(kill, watch.requested_at[execution]),
        started_s=since(kill, watch.started_at[execution]),
        lost_s=max(since(kill, watch.lost_at[i]) for i in kill.lost_ids),
        active_s=logged_after(kill.survivor, "supervisor.active", kill.killed_at),
        caught_up_s=logged_after(kill.survivor, "supervisor.caught_up", kill.killed_at),
    )


async def one_size(executions: int) -> TakeOver:
    async with isolated() as settings, Fleet(settings, CONCURRENCY, OPTIONS) as fleet:
        names = await declare(settings)
        await fleet.spawn(2)
        progress(f"filling the log: {executions:,} no-ops submitted, 2 workers draining")
        fill_s = await fill(settings, executions, names)
        async with watching(settings, names) as watch:
            kill = await kill_supervisor(fleet, watch, with_sleeper=True)
            await until_taken_over(watch, kill)
        return figures(executions, fill_s, watch, kill)


def row(label: str, value: float | None) -> str:
    shown = "n/a" if value is None else f"{value:6.2f} s"
    return f"  {label:<40}{shown:>9}"


def report(results: list[TakeOver]) -> str:
    verdict = {True: "met", False: "MISSED"}
    lines = [
        f"Take-over: SIGKILL of the active supervisor's worker; 2 workers --heartbeat "
        f"{HEARTBEAT_S:g} --loss-window {LOSS_WINDOW_S:g}; times from the kill",
        "",
    ]
    for r in results:
        lines += [
            f"{r.executions:,} executions in the log (filled in {r.fill_s:.0f} s)",
            row("survivor logged supervisor.active", r.active_s),
            row("survivor logged supervisor.caught_up", r.caught_up_s),
            row("trigger: ExecutionRequested.at", r.requested_s),
            row("trigger: AttemptStarted.at", r.started_s)
            + f"   target <= {TRIGGER_TARGET_S:g} s: {verdict[r.started_s <= TRIGGER_TARGET_S]}",
            row("lost: AttemptFailed(worker_lost).at", r.lost_s)
            + f"   target <= {LOST_TARGET_S:g} s: {verdict[r.lost_s <= LOST_TARGET_S]}",
        ]
    return "\n".join(lines)


async def run(sizes: list[int]) -> str:
    results = []
    for size in sizes:
        results.append(await one_size(size))
        progress(report(results[-1:]))
    return report(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_takeover", description=__doc__
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[20_000, 200_000], help="executions in the log"
    )
    args = parser.parse_args(argv)
    print(run_cleanly(run(args.sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
