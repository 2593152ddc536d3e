"""Failures that are not exceptions: killed workers, timeouts, shutdown (SPEC section 5).

These run ``ricochet worker`` as subprocesses with a 0.5 s heartbeat and a 3 s
loss window, and kill them for real.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from ricochet.contracts import AttemptFailed, AttemptStarted, FailureCause
from ricochet.engine import ExecutionState, Status
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import eventually, log_events
from tests.integration.processes import Fleet, fleet

WINDOW = 3.0
SLACK = 4.0
"""Taking over as supervisor replays the log and then waits one window: bounded, not tight."""


def running_attempt(client: Client, execution_id: str, attempt: int) -> ExecutionState | None:
    state = client.state(execution_id)
    if state is not None and state.status is Status.RUNNING and state.next_attempt == attempt:
        return state
    return None


def body_running(client: Client, workers: Fleet, execution_id: str) -> ExecutionState | None:
    """Attempt 1 recorded as started *and* its body entered (its marker written): a
    worker killed between the two never ran the body, which is no test of "ran once"."""
    state = running_attempt(client, execution_id, 1)
    return state if state is not None and workers.runs(execution_id) else None


async def test_killed_worker_is_detected_and_the_retry_runs_elsewhere(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """retries=1, worker SIGKILLed mid-run: worker_lost within the window, attempt 2 succeeds."""
    async with fleet(settings, tmp_path) as workers:
        await workers.start()
        await workers.start()
        handle = await client.submit("p.sleepy", [30])
        state = await eventually(lambda: body_running(client, workers, handle.id))
        victim = workers.by_worker_id(state.attempts[-1].worker)
        victim.signal(signal.SIGKILL)
        killed_at = time.time()
        final = await handle.wait(timeout=WINDOW + SLACK + 20)

    assert Status.SUCCEEDED == final.status
    first, second = final.attempts
    assert FailureCause.WORKER_LOST == first.cause
    assert first.ended_at is not None
    assert first.ended_at.timestamp() - killed_at < WINDOW + SLACK
    assert second.worker != first.worker
    assert [f"1 {victim.pid}"] == workers.runs(handle.id)[:1]


async def test_killed_worker_with_no_retries_fails_and_never_reruns(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """retries=0: the execution fails with worker_lost and the body ran exactly once."""
    async with fleet(settings, tmp_path) as workers:
        await workers.start()
        await workers.start()
        handle = await client.submit("p.sleepy_once", [30])
        state = await eventually(lambda: body_running(client, workers, handle.id))
        workers.by_worker_id(state.attempts[-1].worker).signal(signal.SIGKILL)
        final = await handle.wait(timeout=WINDOW + SLACK + 20)
        time_after = time.monotonic() + 2 * WINDOW
        await eventually(lambda: time.monotonic() > time_after, timeout=3 * WINDOW)

    assert Status.FAILED == final.status
    assert FailureCause.WORKER_LOST == final.cause
    assert 1 == len(workers.runs(handle.id))
    events = await log_events(settings, handle.id)
    assert 1 == sum(isinstance(e, AttemptStarted) for e in events)


async def test_retry_after_a_lost_worker_waits_its_delay(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """retries=(1, 0.5): attempt 2 starts no earlier than 0.5 s after the loss is recorded."""
    async with fleet(settings, tmp_path) as workers:
        await workers.start()
        await workers.start()
        handle = await client.submit("p.sleepy_delayed", [30])
        state = await eventually(lambda: body_running(client, workers, handle.id))
        workers.by_worker_id(state.attempts[-1].worker).signal(signal.SIGKILL)
        final = await handle.wait(timeout=WINDOW + SLACK + 20)

    assert Status.SUCCEEDED == final.status
    events = await log_events(settings, handle.id)
    lost = next(e for e in events if isinstance(e, AttemptFailed))
    restarted = next(e for e in events if isinstance(e, AttemptStarted) and e.attempt == 2)
    assert FailureCause.WORKER_LOST == lost.cause
    assert (restarted.at - lost.at).total_seconds() >= 0.5


async def test_timeouts_fail_the_attempt_and_follow_the_policy(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """Async and sync bodies past timeout=0.5: cause timeout, then a retry that succeeds."""
    async with fleet(settings, tmp_path) as workers:
        await workers.start()
        async_handle = await client.submit("p.slow_async", [5])
        sync_handle = await client.submit("p.slow_sync", [3])
        async_final = await async_handle.wait(timeout=20)
        sync_final = await sync_handle.wait(timeout=20)

    for final, result in ((async_final, "async in time"), (sync_final, "sync in time")):
        assert Status.SUCCEEDED == final.status
        assert result == final.result
        first = final.attempts[0]
        assert FailureCause.TIMEOUT == first.cause
        assert first.error is not None
        assert "timeout of 0.5 s" in first.error.message
        assert first.started_at is not None
        assert first.ended_at is not None
        assert 0.5 <= (first.ended_at - first.started_at).total_seconds() < 2.0


async def test_sigterm_lets_a_short_attempt_finish(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """SIGTERM during a 1 s attempt: it finishes, is recorded once, and the worker exits 0."""
    async with fleet(settings, tmp_path) as workers:
        worker = await workers.start("--grace", "10")
        handle = await client.submit("p.sleepy_once", [1.0])
        await eventually(lambda: running_attempt(client, handle.id, 1))
        worker.signal(signal.SIGTERM)
        assert 0 == await worker.exited()
        final = await handle.wait(timeout=10)

    assert Status.SUCCEEDED == final.status
    assert 1 == len(final.attempts)
    events = await log_events(settings, handle.id)
    assert 4 == len({e.event_id for e in events}) == len(events)


async def test_sigterm_past_the_grace_records_the_attempt_and_retries_elsewhere(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """An attempt longer than the grace period is recorded lost and retried by another worker."""
    async with fleet(settings, tmp_path) as workers:
        leaving = await workers.start("--grace", "1")
        handle = await client.submit("p.sleepy", [30])
        await eventually(lambda: running_attempt(client, handle.id, 1))
        staying = await workers.start()
        leaving.signal(signal.SIGTERM)
        assert 0 == await leaving.exited(timeout=20)
        final = await handle.wait(timeout=20)

    assert Status.SUCCEEDED == final.status
    first, second = final.attempts
    assert FailureCause.WORKER_LOST == first.cause
    assert first.error is not None
    assert "WorkerShutdown" == first.error.type
    assert str(staying.pid) == (second.worker or "").rsplit(":", 1)[1]
