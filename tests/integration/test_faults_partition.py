"""A worker cut off for longer than the loss window, then back (issue 15 item 6).

The cut is a pause: ``SIGSTOP`` freezes the worker process (its heartbeats, its
bodies, its connection), as a partition or a long GC pause would, while the broker
and the other workers carry on; ``SIGCONT`` brings it back with its attempts still
running. For the supervisor that worker is indistinguishable from a dead one.

What SPEC 7 asks, and this test counts from the task bodies' own ledger:
- ``retries=0``: the attempt is declared lost and the execution ends failed; the
  body, which finishes after the pause, ran once and never runs again; its late
  outcome is on the log and ignored (the first outcome of an attempt wins).
- with retries: the lost attempt follows its policy, so attempt 2 runs on another
  worker while attempt 1's body, paused, finishes later: the body runs twice, once
  per attempt, never twice for one attempt (7.8), and 1 + retries attempts at most.
- the worker says it was cut off (``worker.cut_off``), for how long, and which
  attempts that may concern.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson

from ricochet.contracts import AttemptSucceeded, Event, FailureCause
from ricochet.engine import Status, project
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import eventually, log_events
from tests.integration.processes import WorkerProcess, fleet

WINDOW_S = 3.0
"""The fleet's loss window (``--loss-window 3``)."""
HEARTBEAT_S = 0.5
"""The fleet's heartbeat interval: the last one before the pause came up to this early."""
BODY_S = 6.0
"""Attempt 1 runs longer than the loss window, so it is running when the cut comes."""


def lines(worker: WorkerProcess, event: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in worker.text().splitlines() if f'"{event}"' in line]


def worker_id(worker: WorkerProcess, events: list[Event]) -> str:
    (found,) = {e.worker for e in events if e.worker and e.worker.endswith(f":{worker.pid}")}
    return found


async def test_a_worker_cut_off_longer_than_the_loss_window(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """Given a supervising worker that runs no work, a worker A running a ``retries=0``
    attempt and a ``retries=1`` attempt, and a worker B that joins afterwards; when A is
    paused longer than the loss window and then resumed: the ``retries=0`` execution
    ended failed (worker_lost) with its body run once; the ``retries=1`` one succeeded
    with attempt 2 on B and attempt 1's body run once on A; A's late outcomes are on
    the log and change nothing; A logged ``worker.cut_off`` naming both attempts."""
    async with fleet(settings, tmp_path) as workers:
        supervising = await workers.start("--queues", "idle")
        await eventually(lambda: lines(supervising, "supervisor.active"), timeout=15)
        cut = await workers.start()
        once = await client.submit("p.sleepy_once", [BODY_S])
        retried = await client.submit("p.sleepy", [BODY_S])
        await eventually(lambda: workers.runs(once.id) and workers.runs(retried.id), timeout=15)
        other = await workers.start()
        cut.signal(signal.SIGSTOP)
        paused = time.monotonic()
        try:
            failed = await once.wait(timeout=30)
            declared_s = time.monotonic() - paused
            succeeded = await retried.wait(timeout=30)
        finally:
            cut.signal(signal.SIGCONT)
        resumed_after_s = time.monotonic() - paused
        (said,) = await eventually(lambda: lines(cut, "worker.cut_off"), timeout=15)
        late = await eventually(lambda: late_successes(settings, cut, [once.id, retried.id]))
        events = await log_events(settings)
    print(
        f"\ndeclared lost {declared_s:.1f} s into the pause; resumed at {resumed_after_s:.1f} s;"
        f" worker.cut_off: {said['seconds']} s"
    )

    assert declared_s > WINDOW_S - HEARTBEAT_S, "not judged before the window had passed"
    assert failed.status is Status.FAILED
    assert failed.cause is FailureCause.WORKER_LOST
    assert len(failed.attempts) == 1
    assert [run.split()[0] for run in workers.runs(once.id)] == ["1"], "retries=0: ran once"

    assert succeeded.status is Status.SUCCEEDED
    assert [(a.number, a.worker) for a in succeeded.attempts] == [
        (1, worker_id(cut, events)),
        (2, worker_id(other, events)),
    ]
    assert [run.split()[0] for run in workers.runs(retried.id)] == ["1", "2"], (
        "one run per attempt: attempt 1 (paused, finished late) and attempt 2 elsewhere"
    )

    assert {e.execution_id for e in late} == {once.id, retried.id}, "late outcomes recorded"
    fresh = project(events)
    assert fresh.executions[once.id] == failed, "and ignored: the first outcome wins"
    assert fresh.executions[retried.id] == succeeded

    assert float(str(said["seconds"])) > WINDOW_S
    assert said["running"] == 2
    assert said["attempts"] == sorted([f"{once.id}/1", f"{retried.id}/1"])


async def late_successes(
    settings: Settings, worker: WorkerProcess, execution_ids: list[str]
) -> list[AttemptSucceeded]:
    """Attempt 1's successes recorded by ``worker`` after it came back, once all are in."""
    events = await log_events(settings)
    found = [
        e
        for e in events
        if isinstance(e, AttemptSucceeded)
        and e.execution_id in execution_ids
        and e.worker is not None
        and e.worker.endswith(f":{worker.pid}")
    ]
    return found if len(found) == len(execution_ids) else []
