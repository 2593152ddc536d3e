"""An execution's life on a real broker: the events it leaves on the stream."""

from __future__ import annotations

import asyncio

import pytest

from ricochet.contracts import AttemptFailed, AttemptStarted, ExecutionFailed, RetryScheduled
from ricochet.errors import RemoteError
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import log_events, running_worker, types_of


async def test_success_first_time_records_four_events_in_order(
    settings: Settings, client: Client
) -> None:
    """A success is exactly requested, started, succeeded, ended; once each, in order."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.ok", [21])
        assert await handle.result(timeout=15) == {"doubled": 42}

    events = await log_events(settings, handle.id)
    assert types_of(events) == [
        "execution_requested.v2",
        "attempt_started.v2",
        "attempt_succeeded.v1",
        "execution_succeeded.v1",
    ]
    assert len({event.event_id for event in events}) == 4


async def test_async_task_runs_on_the_event_loop(settings: Settings, client: Client) -> None:
    """Async functions are awaited by the worker and their result recorded."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.async_ok", [1])
        assert await handle.result(timeout=15) == 2


async def test_fails_twice_then_succeeds_with_immediate_retries(
    settings: Settings, client: Client
) -> None:
    """``retries=2``: three attempts, each retry scheduled with no delay."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.twice_then_ok")
        assert await handle.result(timeout=15) == "third time lucky"

    events = await log_events(settings, handle.id)
    started = [e for e in events if isinstance(e, AttemptStarted)]
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert [e.attempt for e in started] == [1, 2, 3]
    assert [e.delay_s for e in retries] == [0.0, 0.0]
    failures = [e for e in events if isinstance(e, AttemptFailed)]
    for failure, start in zip(failures, started[1:], strict=True):
        assert (start.at - failure.at).total_seconds() < 1.0


async def test_exhausted_retries_end_with_the_last_error(
    settings: Settings, client: Client
) -> None:
    """After 1 + retries failures, ``ExecutionFailed`` carries the last attempt's error."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.always_fails")
        with pytest.raises(RemoteError) as raised:
            await handle.result(timeout=15)
    assert "tests.integration.tasks.Boom" == raised.value.remote_type
    assert "still broken on attempt 3" == raised.value.remote_message
    assert "raise Boom" in raised.value.remote_traceback

    events = await log_events(settings, handle.id)
    assert sum(isinstance(e, AttemptStarted) for e in events) == 3
    final = events[-1]
    assert isinstance(final, ExecutionFailed)
    assert final.error.message == "still broken on attempt 3"


async def test_no_retries_means_one_attempt_ever(settings: Settings, client: Client) -> None:
    """``retries=0`` and a failure: one attempt, and nothing after the terminal event."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.fails_once_no_retry")
        state = await handle.wait(timeout=15)
        await asyncio.sleep(1.0)

    assert state.status.value == "failed"
    events = await log_events(settings, handle.id)
    assert sum(isinstance(e, AttemptStarted) for e in events) == 1
    assert not [e for e in events if isinstance(e, RetryScheduled)]


async def test_result_that_is_not_json_fails_with_its_type(
    settings: Settings, client: Client
) -> None:
    """Results travel as JSON, never pickle: a set fails the attempt, naming the type."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.not_json")
        state = await handle.wait(timeout=15)
    assert state.error is not None
    assert "result of type set is not JSON-serialisable" in state.error.message
