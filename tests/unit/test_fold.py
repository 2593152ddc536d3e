"""The fold (SPEC section 3): same events in, same state out; duplicates change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ricochet.contracts import Event, FailureCause, RetryPolicy
from ricochet.engine import (
    AttemptState,
    CancelExecution,
    Command,
    ExecutionState,
    Projection,
    RecordFailure,
    RecordSuccess,
    Rejected,
    RejectExecution,
    RequestExecution,
    StartAttempt,
    Status,
    evolve,
    fold,
    initial,
    parse_retries,
    progress_of,
    project,
    run,
)
from ricochet.engine.evolve import PHASES
from tests.unit.builders import (
    BOOM,
    EXECUTION,
    FAIL_THEN_SUCCEED,
    POLICY,
    RESULT,
    TARGET,
    WORKER_1,
    WORKER_2,
    at,
    execution_failed,
    failed,
    requested,
    retry_scheduled,
    started,
    succeeded,
)

FAIL_TWICE: tuple[Event, ...] = (
    requested(0),
    started(1, 1),
    failed(1, 3),
    retry_scheduled(1, 3, 10.0),
    started(2, 13, WORKER_2),
    failed(2, 14, WORKER_2),
    execution_failed(2, 14, WORKER_2),
)
"""Under (1, 10): attempt 1 fails, attempt 2 fails, the execution fails."""


def test_fold_of_a_full_history() -> None:
    """The fold says what happened: status, each attempt's worker, times, outcome and error."""
    # Given a history where attempt 1 failed and attempt 2 succeeded ten seconds later
    events = FAIL_THEN_SUCCEED
    # When it is folded
    actual = fold(events)
    # Then the state says all of it
    expected = ExecutionState(
        execution_id=EXECUTION,
        status=Status.SUCCEEDED,
        target=TARGET,
        args=(42,),
        kwargs={"currency": "EUR"},
        idempotency_key="invoice-42",
        requested_at=at(0),
        policy=POLICY,
        attempts=(
            AttemptState(
                number=1,
                worker=WORKER_1,
                started_at=at(1),
                ended_at=at(3),
                outcome="failed",
                cause=FailureCause.EXCEPTION,
                error=BOOM,
            ),
            AttemptState(
                number=2,
                worker=WORKER_2,
                started_at=at(13),
                ended_at=at(15),
                outcome="succeeded",
                delay_before_s=10.0,
                due_at=at(13),
            ),
        ),
        next_attempt=2,
        result=RESULT,
        ended_at=at(15),
        progress=progress_of(events[-1]),
    )
    assert expected == actual


def test_fold_of_a_failed_history_keeps_the_final_error() -> None:
    """When the last attempt fails, the state carries the error waiters get."""
    actual = fold(FAIL_TWICE)

    assert Status.FAILED == actual.status
    assert (BOOM, FailureCause.EXCEPTION, at(14)) == (actual.error, actual.cause, actual.ended_at)
    assert ["failed", "failed"] == [a.outcome for a in actual.attempts]
    assert [WORKER_1, WORKER_2] == [a.worker for a in actual.attempts]
    assert actual.result is None


def test_fold_while_a_retry_waits() -> None:
    """Between attempts the state says which attempt is next and when it is due."""
    actual = fold(FAIL_THEN_SUCCEED[:4])

    assert Status.RETRY_SCHEDULED == actual.status
    assert (2, at(13), 10.0) == (actual.next_attempt, actual.next_due_at, actual.next_delay_s)


def test_every_event_duplicated_in_place_changes_nothing() -> None:
    """Each event delivered twice in a row gives the same state as once."""
    for history in (FAIL_THEN_SUCCEED, FAIL_TWICE, FAIL_THEN_SUCCEED[:4]):
        doubled = [event for event in history for _ in range(2)]

        assert fold(history) == fold(doubled)


def test_whole_log_repeated_changes_nothing() -> None:
    """Replaying the whole log again (a restarted reader) gives the same state."""
    for history in (FAIL_THEN_SUCCEED, FAIL_TWICE, FAIL_THEN_SUCCEED[:4]):
        assert fold(history) == fold((*history, *history))


def test_late_success_after_failure_changes_nothing() -> None:
    """A zombie's success for attempt 1 after attempt 1 was recorded failed is ignored."""
    # Given attempt 1 recorded as failed
    state = fold((requested(0), started(1, 1), failed(1, 60)))
    # When the zombie's success for attempt 1 arrives
    actual = evolve(state, succeeded(1, 61, RESULT))
    # Then the first recorded outcome wins
    assert state is actual


def test_late_straggler_after_the_retry_or_the_end_changes_nothing() -> None:
    """Old news of an earlier attempt never reopens a later state."""
    scheduled = fold(FAIL_THEN_SUCCEED[:4])
    ended = fold(FAIL_THEN_SUCCEED)

    assert scheduled is evolve(scheduled, succeeded(1, 5, RESULT))
    assert scheduled is evolve(scheduled, started(1, 1))
    assert ended is evolve(ended, failed(2, 16))
    assert ended is evolve(ended, execution_failed(2, 16))


def test_requested_after_started_is_ignored() -> None:
    """Current behaviour: ExecutionRequested after AttemptStarted is old news, like any straggler.

    The client records ExecutionRequested (confirmed) before it publishes the
    work, so on one stream this order does not happen; if it did, the state
    would keep running without the request's target and arguments.
    """
    state = fold((started(1, 1),))

    actual = evolve(state, requested(0))

    assert state is actual
    assert (Status.RUNNING, None) == (actual.status, actual.target)


def test_log_starting_mid_attempt_still_records_the_attempt() -> None:
    """A log whose retention cut the start still folds the attempt it ends."""
    actual = fold((failed(2, 14, WORKER_2), execution_failed(2, 14, WORKER_2)))

    assert Status.FAILED == actual.status
    assert (2, WORKER_2, "failed") == (
        actual.attempts[0].number,
        actual.attempts[0].worker,
        actual.attempts[0].outcome,
    )


def test_projection_counts_applied_and_ignored() -> None:
    """The projection says how many events changed state and how many were old news."""
    # Given a projection
    projection = Projection()
    # When a history arrives, then two of its events again
    for event in (*FAIL_THEN_SUCCEED, FAIL_THEN_SUCCEED[1], FAIL_THEN_SUCCEED[-1]):
        projection.apply(event)
    # Then every first delivery applied and both repeats were ignored
    assert (7, 2) == (projection.applied, projection.ignored)
    assert {EXECUTION: fold(FAIL_THEN_SUCCEED)} == projection.executions


def test_projection_keeps_executions_apart() -> None:
    """Interleaved executions fold independently."""
    other = "aa11bb22cc33dd44ee55ff6677889900"
    events: list[Event] = [requested(0), requested(0, other), started(1, 1, execution_id=other)]

    actual = project(events)

    assert Status.PENDING == actual.executions[EXECUTION].status
    assert Status.RUNNING == actual.executions[other].status
    assert actual.get("nobody") is None


def test_projection_of_log_twice_equals_projection_of_log() -> None:
    """A restarted projector replaying the log reaches the same state (SPEC 7.5)."""
    other = "aa11bb22cc33dd44ee55ff6677889900"
    events: list[Event] = [
        *FAIL_THEN_SUCCEED,
        requested(0, other),
        started(1, 1, execution_id=other),
    ]

    once = project(events)
    twice = project(events + events)

    assert once.executions == twice.executions
    assert (len(events), len(events)) == (twice.applied, twice.ignored)


def test_fold_without_events_or_state_is_an_error() -> None:
    """There is nothing to fold from nothing; a given state with no events is itself."""
    state = initial(EXECUTION)

    assert state is fold((), state)
    with pytest.raises(ValueError, match="at least one event"):
        fold(())


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """A valid history made by driving the decider: random policy and outcomes, cut anywhere."""
    count = draw(st.integers(min_value=0, max_value=4))
    low = draw(st.floats(min_value=0, max_value=600))
    policy = parse_retries(TARGET, (count, low, low + draw(st.floats(0, 600))))
    state = initial(EXECUTION)
    events: list[Event] = []

    def record(command: Command) -> None:
        nonlocal state
        decision, state = run(command, state)
        assert not isinstance(decision, Rejected), decision.reason
        events.extend(decision)

    now = at(0)
    record(RequestExecution(EXECUTION, TARGET, now))
    if draw(st.integers(0, 9)) == 0:
        record(RejectExecution(BOOM, now))
    attempt = 1
    while not state.is_terminal:
        now = max(now, state.next_due_at or now) + timedelta(seconds=draw(st.integers(0, 5)))
        if draw(st.integers(0, 19)) == 0:  # cancelled while waiting: the history ends
            record(CancelExecution(f"claim-{attempt}", now))
            break
        record(StartAttempt(attempt, draw(st.sampled_from([WORKER_1, WORKER_2])), policy, now))
        now += timedelta(seconds=draw(st.integers(0, 100)))
        if draw(st.integers(0, 9)) == 0:  # cancelled while running: this attempt is the last
            record(CancelExecution(f"claim-{attempt}", now))
        outcome = draw(st.sampled_from(["success", "failure", "lost", "fatal"]))
        if outcome == "success":
            record(RecordSuccess(attempt, {"attempt": attempt}, now, WORKER_1))
        else:
            cause = FailureCause.WORKER_LOST if outcome == "lost" else FailureCause.EXCEPTION
            record(RecordFailure(attempt, cause, BOOM, now, retryable=outcome != "fatal"))
        attempt += 1
    return events[: draw(st.integers(min_value=1, max_value=len(events)))]


@settings(max_examples=200)
@given(histories(), st.data())
def test_duplicates_anywhere_later_change_nothing(
    history: list[Event], data: st.DataObject
) -> None:
    """Any event delivered again at any later point leaves the fold unchanged."""
    # Given a valid history and copies of its events inserted after their originals
    noisy: list[Event] = []
    for index, event in enumerate(history):
        noisy.append(event)
        again = data.draw(st.lists(st.integers(0, index), max_size=3), label=f"after {index}")
        noisy.extend(history[i] for i in again)
    # When both are folded and projected
    # Then the states are equal
    assert fold(history) == fold(noisy)
    assert project(history).executions == project(noisy).executions
    assert len(history) == project(noisy).applied


@given(histories())
def test_decider_histories_fold_to_a_consistent_state(history: list[Event]) -> None:
    """Attempts never exceed 1 + retries, and a terminal state has every attempt ended."""
    actual = fold(history)

    policy = actual.policy or RetryPolicy()
    assert len(actual.attempts) <= policy.max_attempts
    assert [a.number for a in actual.attempts] == list(range(1, len(actual.attempts) + 1))
    if actual.is_terminal:
        assert all(a.outcome is not None for a in actual.attempts)


def test_every_event_type_has_a_phase_in_the_fold() -> None:
    """``progress_of`` looks types up in a table: a new event type must be added to it."""
    (union, *_) = get_args(Event)
    assert set(PHASES) == set(get_args(union))


def test_copies_of_states_do_not_share_their_kwargs() -> None:
    assert initial("a").kwargs is not initial("b").kwargs
