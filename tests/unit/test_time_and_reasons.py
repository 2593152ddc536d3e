"""Edge cases found in review: time zones that are not UTC, and reasons on one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ricochet.contracts import (
    ErrorInfo,
    FailureCause,
    RetryPolicy,
    RetryScheduled,
    decode_batch,
    decode_event,
)
from ricochet.contracts.events import AttemptStarted
from ricochet.engine import RecordFailure, StartAttempt, awaiting_attempt, decide, fold
from ricochet.errors import DecodeError

LONDON = ZoneInfo("Europe/London")


def test_a_zone_at_offset_zero_is_still_converted_to_utc() -> None:
    """Europe/London in winter is at +00:00 but is not UTC: events keep UTC only."""
    started = AttemptStarted(
        event_id="e/1/started",
        execution_id="e",
        attempt=1,
        at=datetime(2026, 1, 1, tzinfo=LONDON),
        policy=RetryPolicy(),
    )
    assert UTC is started.at.tzinfo


def test_due_time_is_the_delay_after_the_failure_across_a_clock_change() -> None:
    """A 2 h retry scheduled 30 min before the clocks go forward is due 2 real hours later."""
    now = datetime(2026, 3, 29, 0, 30, tzinfo=LONDON)
    policy = RetryPolicy(retries=1, delay_min=7200, delay_max=7200)
    state = awaiting_attempt("e", "t", 1)
    state = fold(decide(StartAttempt(1, "w", policy, now), state), state)  # type: ignore[arg-type]
    error = ErrorInfo(type="Boom", message="boom")
    _, retry = decide(RecordFailure(1, FailureCause.EXCEPTION, error, now), state)  # type: ignore[misc]
    assert isinstance(retry, RetryScheduled)
    assert timedelta(seconds=7200) == retry.due_at - now
    assert datetime(2026, 3, 29, 2, 30, tzinfo=UTC) == retry.due_at


def test_decode_errors_stay_on_one_line() -> None:
    """Reasons go into headers and log lines: input cannot break them across lines."""
    with pytest.raises(DecodeError) as raised:
        decode_event(b'{"type": "a\\nb"}')
    assert "\n" not in str(raised.value)


def test_an_empty_batch_is_not_a_stream_message() -> None:
    """A stream message records one or more events; an empty array is malformed."""
    with pytest.raises(DecodeError):
        decode_batch(b"[]")
