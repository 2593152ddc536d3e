"""Literal events and commands for the pure tests: one fixed clock, one execution.

Times are fixed data (``T0`` plus seconds), never the wall clock, so every
expected value in a test can be written out in full.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CancelRequested,
    ErrorInfo,
    Event,
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionSucceeded,
    FailureCause,
    Json,
    RerunRequested,
    RetryPolicy,
    RetryScheduled,
    event_id,
)
from ricochet.engine.children import child_id, reused
from ricochet.engine.replies import reply_requested, reply_sent

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXECUTION = "3f2a9c1e7b4d4e0f9a8b6c5d4e3f2a1b"
TARGET = "billing.tasks:send_invoice"
WORKER_1 = "worker-a:4242"
WORKER_2 = "worker-b:1717"
BOOM = ErrorInfo(
    type="builtins.ConnectionError",
    message="SMTP server refused the connection",
    traceback='Traceback (most recent call last):\n  File "billing/tasks.py", line 12\n',
)
POLICY = RetryPolicy(retries=2, delay_min=10.0, delay_max=20.0)


def at(seconds: float) -> datetime:
    """``seconds`` after the fixed start of every test."""
    return T0 + timedelta(seconds=seconds)


def requested(seconds: float = 0, execution_id: str = EXECUTION) -> ExecutionRequested:
    return ExecutionRequested(
        event_id=event_id(execution_id, 0, "requested"),
        execution_id=execution_id,
        attempt=0,
        at=at(seconds),
        target=TARGET,
        args=(42,),
        kwargs={"currency": "EUR"},
        idempotency_key="invoice-42",
    )


def started(
    attempt: int,
    seconds: float,
    worker: str = WORKER_1,
    policy: RetryPolicy = POLICY,
    execution_id: str = EXECUTION,
) -> AttemptStarted:
    return AttemptStarted(
        event_id=event_id(execution_id, attempt, "started"),
        execution_id=execution_id,
        attempt=attempt,
        at=at(seconds),
        worker=worker,
        policy=policy,
    )


def succeeded(
    attempt: int, seconds: float, result: Json = None, worker: str = WORKER_1
) -> AttemptSucceeded:
    return AttemptSucceeded(
        event_id=event_id(EXECUTION, attempt, "succeeded"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        worker=worker,
        result=result,
    )


def failed(
    attempt: int,
    seconds: float,
    worker: str | None = WORKER_1,
    cause: FailureCause = FailureCause.EXCEPTION,
) -> AttemptFailed:
    return AttemptFailed(
        event_id=event_id(EXECUTION, attempt, "failed"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        worker=worker,
        cause=cause,
        error=BOOM,
    )


def retry_scheduled(
    attempt: int, seconds: float, delay_s: float, worker: str | None = WORKER_1
) -> RetryScheduled:
    return RetryScheduled(
        event_id=event_id(EXECUTION, attempt, "retry"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        worker=worker,
        next_attempt=attempt + 1,
        delay_s=delay_s,
        due_at=at(seconds + delay_s),
    )


def execution_succeeded(
    attempt: int, seconds: float, result: Json = None, worker: str = WORKER_1
) -> ExecutionSucceeded:
    return ExecutionSucceeded(
        event_id=event_id(EXECUTION, attempt, "ended"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        worker=worker,
        result=result,
    )


def execution_failed(
    attempt: int,
    seconds: float,
    worker: str | None = WORKER_1,
    cause: FailureCause = FailureCause.EXCEPTION,
) -> ExecutionFailed:
    return ExecutionFailed(
        event_id=event_id(EXECUTION, attempt, "ended"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        worker=worker,
        cause=cause,
        error=BOOM,
    )


def cancelled(
    attempt: int, seconds: float, reason: str = "", claim: str = "cancel-1"
) -> ExecutionCancelled:
    """Someone cancelled the execution while it waited to start ``attempt``."""
    return ExecutionCancelled(
        event_id=event_id(EXECUTION, attempt, "cancelled"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        claim=claim,
        reason=reason,
        source="cli",
    )


def cancel_requested(
    attempt: int, seconds: float, reason: str = "", claim: str = "cancel-1"
) -> CancelRequested:
    """Someone cancelled the execution while attempt ``attempt - 1`` ran."""
    return CancelRequested(
        event_id=event_id(EXECUTION, attempt, "cancel-requested"),
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(seconds),
        claim=claim,
        reason=reason,
        source="cli",
    )


RESULT: Json = {"invoice": 42, "sent": True}

FAIL_THEN_SUCCEED: tuple[Event, ...] = (
    requested(0),
    started(1, 1, WORKER_1),
    failed(1, 3, WORKER_1),
    retry_scheduled(1, 3, 10.0, WORKER_1),
    started(2, 13, WORKER_2),
    succeeded(2, 15, RESULT, WORKER_2),
    execution_succeeded(2, 15, RESULT, WORKER_2),
)
"""Attempt 1 fails on one worker, attempt 2 succeeds on another ten seconds later."""

REPLY_REQUESTED = reply_requested(EXECUTION, "billing.replies", "order-17", at(0), WORKER_1)

EVERY_EVENT_TYPE: tuple[Event, ...] = (
    *FAIL_THEN_SUCCEED,
    execution_failed(3, 40, WORKER_2),
    reused(EXECUTION, 2, 0, child_id(EXECUTION, 0), "billing.tasks:charge", at(41)),
    RerunRequested(
        event_id=f"{EXECUTION}/3/rerun-x",
        execution_id=EXECUTION,
        attempt=3,
        at=at(50),
        rerun_id="x",
    ),
    cancelled(3, 60, "the invoice was sent by hand"),
    cancel_requested(4, 61),
    REPLY_REQUESTED,
    reply_sent(REPLY_REQUESTED, True, at(62), WORKER_1),
)
"""At least one realistic instance of every event type (not one history)."""
