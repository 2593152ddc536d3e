"""Cancel (``engine.cancel``): Given an execution's events, When it is cancelled, Then the
events recorded, and what the fold makes of them with whatever comes next.

A cancel claims the attempt it pre-empts like a start: the first claim of an
attempt in log order wins, in the fold as in every worker.
"""

from __future__ import annotations

from ricochet.contracts import (
    CancelRequested,
    ErrorInfo,
    ExecutionCancelled,
    FailureCause,
    event_id,
)
from ricochet.engine import (
    CancelExecution,
    RecordFailure,
    RecordSuccess,
    Rejected,
    StartAttempt,
    Status,
    decide,
    fold,
    initial,
    run,
)
from ricochet.engine.cancel import with_cancel_from
from ricochet.engine.recovery import judge_loss
from ricochet.engine.state import CancelNote
from tests.unit.builders import (
    BOOM,
    EXECUTION,
    POLICY,
    RESULT,
    WORKER_1,
    WORKER_2,
    at,
    cancel_requested,
    cancelled,
    execution_succeeded,
    failed,
    requested,
    retry_scheduled,
    started,
    succeeded,
)
from tests.unit.test_decider import given, recorded

WAITING_FOR_RETRY = (requested(0), started(1, 1), failed(1, 3), retry_scheduled(1, 3, 10.0))
"""Attempt 1 failed at t+3; attempt 2 is due at t+13."""
RUNNING_SECOND = (*WAITING_FOR_RETRY, started(2, 13, WORKER_2))


def cancel(seconds: float, reason: str = "paid by hand") -> CancelExecution:
    return CancelExecution("cancel-1", at(seconds), reason, "cli")


def test_cancelling_a_pending_execution_claims_its_first_attempt_and_ends_it() -> None:
    # Given a request no worker has started
    state = given(requested(0))
    # When it is cancelled
    decision, after = run(cancel(5), state)
    # Then the cancel claims attempt 1, and the execution is over
    expected = ExecutionCancelled(
        event_id=event_id(EXECUTION, 1, "cancelled"),
        execution_id=EXECUTION,
        attempt=1,
        at=at(5),
        claim="cancel-1",
        reason="paid by hand",
        source="cli",
    )
    assert (expected,) == recorded(decision)
    assert (Status.CANCELLED, at(5), 1) == (after.status, after.ended_at, after.cancel_from)
    assert after.error == ErrorInfo(
        type="Cancelled",
        message=f"execution {EXECUTION} was cancelled before it started: paid by hand",
    )


def test_cancelling_an_execution_waiting_for_a_retry_claims_that_retry() -> None:
    decision, after = run(cancel(8), given(*WAITING_FOR_RETRY))

    (event,) = recorded(decision)
    assert (ExecutionCancelled, 2) == (type(event), event.attempt)
    assert (Status.CANCELLED, None) == (after.status, after.next_due_at)
    assert "cancelled before attempt 2: paid by hand" in (after.error or BOOM).message


def test_a_start_after_the_cancel_lost_its_claim_and_changes_nothing() -> None:
    """The retry's message still sat in its delay queue; a worker's start of it after the
    cancel on the log is a losing claim (the worker steps back, and so does the fold)."""
    ended = given(*WAITING_FOR_RETRY, cancelled(2, 8))

    assert ended is fold([started(2, 13, WORKER_2)], ended)


def test_a_cancel_after_the_start_of_its_attempt_lost_and_changes_nothing() -> None:
    """The other order: the worker's start came first, so the cancel lost."""
    running = given(*RUNNING_SECOND)

    assert running is fold([cancelled(2, 14)], running)


def test_cancelling_a_running_attempt_claims_the_next_one_and_waits() -> None:
    # Given attempt 2 running
    state = given(*RUNNING_SECOND)
    # When it is cancelled
    decision, after = run(cancel(20), state)
    # Then the cancel claims attempt 3, and the execution goes on running attempt 2
    (event,) = recorded(decision)
    assert (CancelRequested, 3) == (type(event), event.attempt)
    assert (Status.RUNNING, CancelNote(3, "paid by hand", at(20))) == (after.status, after.cancel)


def test_the_running_attempt_failing_ends_the_execution_cancelled_with_no_retry() -> None:
    """Given a cancel waiting for attempt 2, when it fails, then the worker's decider (told
    of the claim) records only the failure, and the fold ends the execution cancelled."""
    state = given(*RUNNING_SECOND, cancel_requested(3, 20))

    decision, after = run(RecordFailure(2, FailureCause.EXCEPTION, BOOM, at(25), WORKER_2), state)

    assert ["attempt_failed.v1"] == [e.type for e in recorded(decision)]
    assert (Status.CANCELLED, at(25)) == (after.status, after.ended_at)
    assert "failed" == after.attempts[-1].outcome
    assert after.error is not None
    assert after.error.message == (
        f"execution {EXECUTION} was cancelled while attempt 2 ran; that attempt failed and was"
        " not retried"
    )


def test_a_worker_that_did_not_know_of_the_cancel_schedules_a_retry_the_fold_ignores() -> None:
    """A worker whose claim book had not yet read the cancel records a retry as usual; the
    fold ends the execution at the failure, and the retry's message loses its claim."""
    after = given(
        *RUNNING_SECOND, cancel_requested(3, 20), failed(2, 25), retry_scheduled(2, 25, 20)
    )

    assert (Status.CANCELLED, None) == (after.status, after.next_due_at)
    assert after is fold([started(3, 45)], after)


def test_the_running_attempt_succeeding_keeps_its_result() -> None:
    """A cancel that came while the last needed attempt ran does not discard its result."""
    state = given(*RUNNING_SECOND, cancel_requested(3, 20))

    _, after = run(RecordSuccess(2, RESULT, at(25), WORKER_2), state)

    assert (Status.SUCCEEDED, RESULT, 3) == (after.status, after.result, after.cancel_from)


def test_a_worker_that_saw_the_cancel_claim_records_no_retry() -> None:
    """A worker holds no log: its claim book saw attempt 3 claimed, so it notes the cancel
    in the state it decides on, and no retry is recorded or published."""
    state = with_cancel_from(given(*RUNNING_SECOND), 3)

    decision = decide(RecordFailure(2, FailureCause.EXCEPTION, BOOM, at(25), WORKER_2), state)

    assert ["attempt_failed.v1"] == [e.type for e in recorded(decision)]


def test_nothing_starts_after_a_cancel() -> None:
    state = given(*RUNNING_SECOND, cancel_requested(3, 20), failed(2, 25))

    decision = decide(StartAttempt(3, WORKER_1, POLICY, at(45)), state)

    assert isinstance(decision, Rejected)


def test_a_second_cancel_while_one_waits_records_nothing() -> None:
    state = given(*RUNNING_SECOND, cancel_requested(3, 20))

    assert () == decide(cancel(21), state)


def test_cancelling_an_ended_execution_is_refused_with_its_status() -> None:
    state = given(requested(0), started(1, 1), succeeded(1, 2), execution_succeeded(1, 2))

    decision = decide(cancel(5), state)

    assert Rejected(f"execution {EXECUTION} has already ended (succeeded)") == decision


def test_cancelling_a_cancelled_execution_is_refused() -> None:
    decision = decide(cancel(9), given(requested(0), cancelled(1, 5)))

    assert Rejected(f"execution {EXECUTION} has already ended (cancelled)") == decision


def test_cancelling_an_execution_not_in_the_log_is_refused() -> None:
    decision = decide(cancel(1), initial(EXECUTION))

    assert Rejected(f"execution {EXECUTION} is not in the log") == decision


def test_two_cancels_of_one_attempt_are_one_fact() -> None:
    """Two people cancel at once: the same event id, and the first claim wins."""
    first = cancelled(1, 5, claim="alice")
    second = cancelled(1, 6, claim="bob")

    once = given(requested(0), first)

    assert first.event_id == second.event_id
    assert once is fold([second], once)


def test_a_cancel_of_a_later_attempt_is_honoured_as_the_workers_honour_it() -> None:
    """No canceller names an attempt past the next, but a log may hold one: workers drop
    that attempt's copies whatever the fold says, so the fold agrees. The attempts before
    it run; the failure of the one just before it ends the execution."""
    waiting = given(*WAITING_FOR_RETRY)

    noted = fold([cancelled(3, 8)], waiting)
    still = fold([started(2, 13), failed(2, 15)], noted)

    assert (Status.RETRY_SCHEDULED, 3) == (noted.status, noted.cancel_from)
    assert (Status.CANCELLED, at(15)) == (still.status, still.ended_at)


def test_the_earliest_attempt_cancelled_is_the_one_that_counts() -> None:
    state = given(*WAITING_FOR_RETRY, cancelled(3, 8))

    assert Status.CANCELLED == fold([cancel_requested(2, 9)], state).status


def test_a_lost_worker_while_a_cancel_waits_ends_it_cancelled_not_poisoned() -> None:
    """The supervisor records the loss like any failure: no retry, no parking as poison."""
    state = given(*RUNNING_SECOND, cancel_requested(3, 20))

    loss = judge_loss(state, 2, WORKER_2, 10.0, at(40), "supervisor")

    assert loss is not None
    assert (None, False, Status.CANCELLED) == (loss.retry, loss.poison, loss.after.status)
