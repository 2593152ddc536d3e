"""Delayed retries wait in TTL queues, one per delay value, and start on time."""

from __future__ import annotations

from ricochet.contracts import AttemptFailed, AttemptStarted, RetryScheduled
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import eventually, log_events, running_worker


def _gaps(events: list[object]) -> list[float]:
    """Seconds from each failure to the start of the next attempt."""
    failed = {e.attempt: e.at for e in events if isinstance(e, AttemptFailed)}
    return [
        (e.at - failed[e.attempt - 1]).total_seconds()
        for e in events
        if isinstance(e, AttemptStarted) and e.attempt > 1
    ]


async def test_backoff_delays_are_respected(settings: Settings, client: Client) -> None:
    """(2, 0.5, 1.0): retry 1 waits >= 0.5 s, retry 2 >= 1.0 s, neither more than 1 s late."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.backoff")
        assert await handle.result(timeout=20) == "done"

    events = await log_events(settings, handle.id)
    assert [e.delay_s for e in events if isinstance(e, RetryScheduled)] == [0.5, 1.0]
    first, second = _gaps(list(events))
    assert 0.5 <= first < 1.5
    assert 1.0 <= second < 2.0


async def test_short_retry_does_not_wait_behind_a_long_one(
    settings: Settings, client: Client
) -> None:
    """A 0.3 s retry scheduled just after a 5 s one starts within 1 s of its own failure."""
    async with running_worker(settings, tasks.ALL):
        slow = await client.submit("t.slow_retry")

        async def slow_is_waiting() -> bool:
            events = await log_events(settings, slow.id)
            return any(isinstance(e, RetryScheduled) for e in events)

        await eventually(slow_is_waiting)
        fast = await client.submit("t.fast_retry")
        assert await fast.result(timeout=10) == "fast done"
        slow_events = await log_events(settings, slow.id)
        assert [e.attempt for e in slow_events if isinstance(e, AttemptStarted)] == [1]

    fast_events = await log_events(settings, fast.id)
    (gap,) = _gaps(list(fast_events))
    assert 0.3 <= gap < 1.0
