"""One supervisor acts at a time, and a cut connection does not slow a loss (issue 22, item 4).

Three ``ricochet worker`` processes under a steady load; every connection of the run's
vhost is cut (``rabbitmqctl close_all_connections --vhost``, never ``--global``) until
another process than the active one takes over the supervision. From then on:

- only one process writes checkpoints: the checkpoint stream, cut into windows, has
  one writer (the ``worker`` field) per window;
- retries lost after the cut are re-published by one process only;
- when the active supervisor's worker is SIGKILLed, its attempts are recorded lost
  within a loss window and a heartbeat of the kill, not after the supervisor's
  allowance for its own reconnect (main: the deposed supervisor resumed silently
  and recorded them 24-26 s after the kill).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    ErrorInfo,
    Event,
    ExecutionRequested,
    FailureCause,
    RetryPolicy,
    RetryScheduled,
    event_id,
)
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.faults import close_all_connections
from tests.integration.harness import bind_target, eventually, log_events
from tests.integration.processes import Fleet, WorkerProcess, fleet, vhost_of
from tests.integration.test_recovery import record_only

HEARTBEAT_S, WINDOW_S = 0.5, 3.0
"""The fleet's defaults (``processes.Fleet.start``)."""
OPTIONS = ("--checkpoint-every", "0.5")
CUTS = 6
"""Cuts tried until another process takes over (the broker picks the first consumer
that comes back; often the one that was active)."""
CHECKPOINT_WINDOW_S = 2.0
OBSERVE_S = 10.0
LOST_RETRIES = 10


def lines_of(worker: WorkerProcess, event: str) -> list[dict[str, object]]:
    """The worker's JSON log lines of one event."""
    found = []
    for line in worker.text().splitlines():
        if f'"{event}"' in line:
            with contextlib.suppress(orjson.JSONDecodeError):
                found.append(orjson.loads(line))
    return found


def worker_id(worker: WorkerProcess) -> str:
    """As ``Settings.worker_id`` makes it: host:pid."""
    return f"{socket.gethostname()}:{worker.pid}"


def takers(workers: Fleet) -> list[tuple[int, int]]:
    """(pid, take-overs logged) of each live worker."""
    return [
        (w.pid, len(lines_of(w, "supervisor.active")))
        for w in workers.workers
        if w.process.poll() is None
    ]


async def active_after(workers: Fleet, before: list[tuple[int, int]], timeout: float) -> int | None:
    """The pid of a worker that took over since ``before``, if one did within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        taken = [pid for (pid, n), (_, m) in zip(before, takers(workers), strict=True) if m > n]
        if taken:
            await asyncio.sleep(2 * HEARTBEAT_S)  # should two claim it, both show
            now = [pid for (pid, n), (_, m) in zip(before, takers(workers), strict=True) if m > n]
            return now[-1]
        await asyncio.sleep(0.1)
    return None


async def cut_until_handed_over(
    settings: Settings, workers: Fleet, active: int
) -> tuple[int, float]:
    """Cut every connection until another process than ``active`` takes over; that pid,
    and when (wall clock) the last cut had taken effect."""
    for _ in range(CUTS):
        before = takers(workers)
        fault = await close_all_connections(vhost_of(settings))
        taker = await active_after(workers, before, timeout=8.0)
        if taker is not None and taker != active:
            return taker, fault.ended
        if taker is not None:
            active = taker
    raise AssertionError(f"no other process took over in {CUTS} cuts")


async def keep_submitting(client: Client, every_s: float = 0.05) -> None:
    """A steady trickle of quick work, so the log moves and checkpoints are due."""
    for index in range(1_000_000):
        await client.submit("p.quick", [index])
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def submitting(client: Client) -> AsyncIterator[None]:
    task = asyncio.create_task(keep_submitting(client))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def lost_retry(target: str, index: int) -> tuple[str, list[Event]]:
    """An execution whose attempt 1 failed and whose retry, due 5 s ago, never reached a
    queue: the supervisor must re-publish it (once)."""
    execution_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    events: list[Event] = [
        ExecutionRequested(
            event_id=event_id(execution_id, 0, "requested"),
            attempt=0,
            at=now - timedelta(seconds=8),
            target=target,
            args=(index,),
            kwargs={},
            execution_id=execution_id,
        ),
        AttemptStarted(
            event_id=event_id(execution_id, 1, "started"),
            attempt=1,
            at=now - timedelta(seconds=7),
            policy=RetryPolicy(retries=2, delay_min=0.5, delay_max=0.5),
            execution_id=execution_id,
            worker="gone:1",
        ),
        AttemptFailed(
            event_id=event_id(execution_id, 1, "failed"),
            attempt=1,
            at=now - timedelta(seconds=6),
            cause=FailureCause.EXCEPTION,
            error=ErrorInfo(type="builtins.RuntimeError", message="first attempt fails"),
            execution_id=execution_id,
            worker="gone:1",
        ),
        RetryScheduled(
            event_id=event_id(execution_id, 1, "retry"),
            attempt=1,
            at=now - timedelta(seconds=6),
            next_attempt=2,
            delay_s=1.0,
            due_at=now - timedelta(seconds=5),
            execution_id=execution_id,
            worker="gone:1",
        ),
    ]
    return execution_id, events


async def checkpoints(settings: Settings) -> list[tuple[float, str]]:
    """(at, writer) of every checkpoint on the stream, read from the first."""
    found: dict[int, tuple[float, str]] = {}
    arrived = asyncio.Event()
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=200)
        queue = await channel.declare_queue(Names(settings.namespace).checkpoints, passive=True)

        async def keep(message: AbstractIncomingMessage) -> None:
            try:
                offset = int(message.headers["x-stream-offset"])  # type: ignore[arg-type]
                body = orjson.loads(message.body)
                at = datetime.fromisoformat(body["at"]).timestamp()
                found[offset] = (at, str(body["worker"]))
                arrived.set()
            finally:
                await message.ack()

        await queue.consume(keep, arguments={"x-stream-offset": "first"})
        while True:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), 2.0)
            except TimeoutError:
                break
    finally:
        await connection.close()
    return [found[offset] for offset in sorted(found)]


def writers_per_window(
    written: list[tuple[float, str]], start: float, end: float
) -> list[set[str]]:
    """The writers of the checkpoints taken in each window of ``CHECKPOINT_WINDOW_S``
    from ``start`` to ``end``."""
    count = int((end - start) // CHECKPOINT_WINDOW_S)
    windows: list[set[str]] = [set() for _ in range(count)]
    for at, writer in written:
        index = int((at - start) // CHECKPOINT_WINDOW_S)
        if 0 <= index < count:
            windows[index].add(writer)
    return windows


async def running_on(settings: Settings, worker: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` have an attempt started by ``worker`` and not ended."""
    events = await log_events(settings)
    started = {
        e.execution_id for e in events if isinstance(e, AttemptStarted) and e.worker == worker
    }
    ended = {e.execution_id for e in events if isinstance(e, AttemptFailed)}
    return {i for i in ids if i in started and i not in ended}


async def sleepers_on(client: Client, settings: Settings, worker: str) -> set[str]:
    """Submit long sleepers until ``worker`` runs some; the ones it runs."""
    ids: list[str] = []
    for _ in range(8):
        handles = [await client.submit("p.sleepy_once", [300]) for _ in range(3)]
        ids += [h.id for h in handles]
        await asyncio.sleep(1.0)
        mine = await running_on(settings, worker, ids)
        if mine:
            return mine
    raise AssertionError(f"{worker} never ran a sleeper")


async def lost_at(settings: Settings, ids: set[str]) -> list[float]:
    """When each of ``ids`` was recorded lost (wall clock), once all are."""
    events = await log_events(settings)
    lost = {
        e.execution_id: e.at.timestamp()
        for e in events
        if isinstance(e, AttemptFailed)
        and e.execution_id in ids
        and e.cause is FailureCause.WORKER_LOST
    }
    return list(lost.values()) if set(lost) == ids else []


@pytest.mark.timeout(300)
async def test_after_a_cut_one_supervisor_acts_and_a_kill_is_judged_within_a_window(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """Given three workers under load and every connection cut until another process
    takes over the supervision: one writer per checkpoint window from the cut on, each
    lost retry re-published once, and the new supervisor's worker SIGKILLed has its
    attempts recorded lost within a loss window and a heartbeat."""
    for target in ("p.quick", "p.fails_first", "p.sleepy_once"):
        await bind_target(settings, target)
    async with fleet(settings, tmp_path) as workers, submitting(client):
        for _ in range(3):
            await workers.start(*OPTIONS)
        first = await eventually(lambda: active_now(workers), timeout=60)
        taker, cut_at = await cut_until_handed_over(settings, workers, first)
        victim = next(w for w in workers.workers if w.pid == taker)
        retried = [lost_retry("p.fails_first", i) for i in range(LOST_RETRIES)]
        await record_only(settings, [event for _, events in retried for event in events])
        sleepers = await sleepers_on(client, settings, worker_id(victim))
        await asyncio.sleep(max(0.0, cut_at + OBSERVE_S - time.time()))
        killed_at = time.time()
        victim.signal(signal.SIGKILL)
        lost = await eventually(lambda: lost_at(settings, sleepers), timeout=90, every=0.5)
        republished = {
            w.pid: [str(line["execution_id"]) for line in lines_of(w, "retry.republished")]
            for w in workers.workers
        }
    windows = writers_per_window(await checkpoints(settings), cut_at, killed_at)
    delays = [round(at - killed_at, 2) for at in lost]
    print(f"\nwriters per {CHECKPOINT_WINDOW_S:g} s window: {[sorted(w) for w in windows]}")
    print(f"re-published by pid: { {p: len(ids) for p, ids in republished.items()} }")
    print(f"{len(lost)} attempts of the killed worker recorded lost after {sorted(delays)} s")
    assert len(windows) >= 3
    assert all(windows), "checkpoints in every window after the cut"
    assert all(len(writers) == 1 for writers in windows), windows
    for execution_id, _ in retried:
        by = [pid for pid, ids in republished.items() if execution_id in ids]
        assert len(by) == 1, f"{execution_id} re-published by {by}"
    assert max(delays) <= WINDOW_S + HEARTBEAT_S, delays


def active_now(workers: Fleet) -> int | None:
    """The pid of the one worker that has taken over (before any cut), if one has."""
    active = [pid for pid, n in takers(workers) if n]
    return active[0] if len(active) == 1 else None
