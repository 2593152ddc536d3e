"""The decider (STYLE rule 2): Given past events, When a command, Then the events it records."""

from __future__ import annotations

from datetime import timedelta

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    ErrorInfo,
    Event,
    ExecutionFailed,
    ExecutionRequested,
    FailureCause,
    RetryPolicy,
    RetryScheduled,
    event_id,
)
from ricochet.engine import (
    Command,
    Decision,
    ExecutionState,
    RecordFailure,
    RecordSuccess,
    Rejected,
    RejectExecution,
    RequestExecution,
    StartAttempt,
    Status,
    decide,
    fold,
    initial,
    parse_retries,
    run,
)
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
    execution_succeeded,
    failed,
    requested,
    retry_scheduled,
    started,
    succeeded,
)


def given(*events: Event) -> ExecutionState:
    """The state the decider sees after ``events``."""
    return fold(events, initial(EXECUTION))


def recorded(decision: Decision) -> tuple[Event, ...]:
    """The events of an accepted decision (fails the test on a rejection)."""
    assert not isinstance(decision, Rejected), decision.reason
    return decision


def failure(attempt: int, seconds: float, retryable: bool = True) -> RecordFailure:
    return RecordFailure(
        attempt, FailureCause.EXCEPTION, BOOM, at(seconds), WORKER_1, retryable=retryable
    )


def test_request_on_nothing_records_execution_requested() -> None:
    """A new execution starts with ExecutionRequested at attempt 0."""
    # Given nothing known about the execution
    state = initial(EXECUTION)
    # When it is requested
    command = RequestExecution(
        EXECUTION,
        TARGET,
        at(0),
        args=(42,),
        kwargs={"currency": "EUR"},
        idempotency_key="invoice-42",
    )
    actual = decide(command, state)
    # Then it is recorded with everything the request said
    assert (requested(0),) == actual


def test_request_twice_is_rejected() -> None:
    """The same execution id never starts twice."""
    state = given(requested(0))

    actual = decide(RequestExecution(EXECUTION, TARGET, at(5)), state)

    assert isinstance(actual, Rejected)


def test_start_on_pending_records_attempt_started() -> None:
    """A worker starting attempt 1 of a pending execution records it with its policy."""
    state = given(requested(0))

    actual = decide(StartAttempt(1, WORKER_1, POLICY, at(1)), state)

    assert (started(1, 1, WORKER_1, POLICY),) == actual


def test_success_records_attempt_and_execution_succeeded() -> None:
    """A returned value ends the attempt and the execution, both with the result."""
    state = given(requested(0), started(1, 1))

    actual = decide(RecordSuccess(1, RESULT, at(2), WORKER_1), state)

    assert (succeeded(1, 2, RESULT), execution_succeeded(1, 2, RESULT)) == actual


def test_failure_with_retries_left_schedules_the_next_attempt() -> None:
    """A failure with retries left schedules attempt + 1 at failure time + the policy's delay."""
    # Given attempt 1 running under (2, 10, 20)
    state = given(requested(0), started(1, 1))
    # When it fails at t+3
    actual = decide(failure(1, 3), state)
    # Then attempt 2 is due 10 s after the failure
    expected_retry = RetryScheduled(
        event_id=event_id(EXECUTION, 1, "retry"),
        execution_id=EXECUTION,
        attempt=1,
        at=at(3),
        worker=WORKER_1,
        next_attempt=2,
        delay_s=10.0,
        due_at=at(13),
    )
    assert (failed(1, 3), expected_retry) == actual


def test_failure_with_retries_exhausted_ends_the_execution_with_the_error() -> None:
    """The last allowed attempt failing ends the execution, carrying the error to waiters."""
    state = given(
        requested(0),
        started(1, 1),
        failed(1, 3),
        retry_scheduled(1, 3, 10.0),
        started(2, 13),
        failed(2, 14),
        retry_scheduled(2, 14, 20.0),
        started(3, 34),
    )

    actual = decide(failure(3, 35), state)

    assert (failed(3, 35), execution_failed(3, 35)) == actual
    ended = recorded(actual)[-1]
    assert isinstance(ended, ExecutionFailed)
    assert BOOM == ended.error


def test_non_retryable_failure_ends_the_execution_with_retries_left() -> None:
    """``retryable=False`` (bad input, say) ends the execution at once, whatever the policy."""
    state = given(requested(0), started(1, 1))

    actual = decide(failure(1, 3, retryable=False), state)

    assert (failed(1, 3), execution_failed(1, 3)) == actual


def test_at_most_once_failure_ends_the_execution() -> None:
    """``retries=0``: a worker lost in attempt 1 ends the execution; it never runs again."""
    state = given(requested(0), started(1, 1, policy=RetryPolicy()))

    lost = RecordFailure(1, FailureCause.WORKER_LOST, BOOM, at(60))
    actual = decide(lost, state)

    expected = (
        failed(1, 60, worker=None, cause=FailureCause.WORKER_LOST),
        execution_failed(1, 60, worker=None, cause=FailureCause.WORKER_LOST),
    )
    assert expected == actual


def test_start_rejected_when_terminal() -> None:
    """Nothing starts after the execution has ended (a redelivered message, say)."""
    state = given(*FAIL_THEN_SUCCEED)

    actual = decide(StartAttempt(3, WORKER_1, POLICY, at(100)), state)

    assert isinstance(actual, Rejected)
    assert "ended" in actual.reason


def test_start_rejected_when_attempt_is_not_the_awaited_one() -> None:
    """Only the awaited attempt may start: not a later one, not an earlier one."""
    pending = given(requested(0))
    scheduled = given(requested(0), started(1, 1), failed(1, 3), retry_scheduled(1, 3, 10.0))

    actual = [
        decide(StartAttempt(2, WORKER_1, POLICY, at(1)), pending),
        decide(StartAttempt(1, WORKER_1, POLICY, at(13)), scheduled),
        decide(StartAttempt(3, WORKER_1, POLICY, at(13)), scheduled),
    ]

    assert [True, True, True] == [isinstance(d, Rejected) for d in actual]


def test_start_rejected_while_the_attempt_runs() -> None:
    """A second delivery of a running attempt does not start it twice."""
    state = given(requested(0), started(1, 1))

    actual = decide(StartAttempt(1, WORKER_2, POLICY, at(2)), state)

    assert isinstance(actual, Rejected)


def test_start_rejected_beyond_one_plus_retries() -> None:
    """Attempts never exceed 1 + retries (SPEC 7.4), even if the policy shrank meanwhile."""
    # Given attempt 2 scheduled under (1, 0), and a worker now running the task with retries=0
    state = given(
        requested(0),
        started(1, 1, policy=RetryPolicy(retries=1)),
        failed(1, 2),
        retry_scheduled(1, 2, 0.0),
    )
    # When it starts attempt 2 under the new policy
    actual = decide(StartAttempt(2, WORKER_1, RetryPolicy(), at(2)), state)
    # Then it is refused
    assert isinstance(actual, Rejected)
    assert "exceeds" in actual.reason


def test_success_rejected_when_not_running() -> None:
    """Only a running attempt can succeed: not a pending one, not another attempt's number."""
    pending = given(requested(0))
    running = given(requested(0), started(1, 1))
    ended = given(*FAIL_THEN_SUCCEED)

    actual = [
        decide(RecordSuccess(1, RESULT, at(2)), pending),
        decide(RecordSuccess(2, RESULT, at(2)), running),
        decide(RecordSuccess(2, RESULT, at(20)), ended),
    ]

    assert [True, True, True] == [isinstance(d, Rejected) for d in actual]


def test_failure_rejected_when_not_running() -> None:
    """A failure for an attempt that is not running (a late zombie, say) records nothing."""
    state = given(requested(0), started(1, 1), failed(1, 3), retry_scheduled(1, 3, 10.0))

    actual = decide(failure(1, 5), state)

    assert isinstance(actual, Rejected)


def test_reject_pending_execution_fails_it_at_attempt_zero() -> None:
    """A request that cannot run at all ends failed, cause rejected, before any attempt."""
    state = given(requested(0))
    error = ErrorInfo(type="UnknownTarget", message=f"no worker serves {TARGET}")

    actual = decide(RejectExecution(error, at(1)), state)

    expected = ExecutionFailed(
        event_id=event_id(EXECUTION, 0, "ended"),
        execution_id=EXECUTION,
        attempt=0,
        at=at(1),
        cause=FailureCause.REJECTED,
        error=error,
    )
    assert (expected,) == actual


def test_reject_only_applies_to_pending_executions() -> None:
    """Once an attempt started (or before the request), rejecting records nothing."""
    error = ErrorInfo(type="UnknownTarget", message="gone")

    actual = [
        decide(RejectExecution(error, at(1)), initial(EXECUTION)),
        decide(RejectExecution(error, at(2)), given(requested(0), started(1, 1))),
    ]

    assert [True, True] == [isinstance(d, Rejected) for d in actual]


def test_seed_flow_five_failures_then_the_end() -> None:
    """The seed: (5, 300, 600) retries 300, 375, 450, 525, 600 s after each failure, then ends."""
    # Given an execution under the seed's policy
    policy = parse_retries(TARGET, (5, 300, 600))
    _, state = run(RequestExecution(EXECUTION, TARGET, at(0)), initial(EXECUTION))
    waits: list[float] = []
    starts: list[float] = []
    ended: Event | None = None
    now = at(0)
    # When every attempt starts when due and fails at once (execution time ignored)
    for attempt in range(1, 7):
        decision, state = run(StartAttempt(attempt, WORKER_1, policy, now), state)
        starts.append((now - at(0)).total_seconds())
        events = recorded(decision)
        decision, state = run(RecordFailure(attempt, FailureCause.EXCEPTION, BOOM, now), state)
        fail, last = recorded(decision)
        assert isinstance(fail, AttemptFailed)
        if isinstance(last, RetryScheduled):
            assert attempt + 1 == last.next_attempt
            waits.append((last.due_at - fail.at).total_seconds())
            now = last.due_at
        else:
            ended = last
        assert isinstance(events[0], AttemptStarted)
    # Then the retries waited the seed's delays, started at the seed's offsets,
    # and the sixth failure ended the execution
    assert [300.0, 375.0, 450.0, 525.0, 600.0] == waits
    assert [0.0, 300.0, 675.0, 1125.0, 1650.0, 2250.0] == starts
    assert isinstance(ended, ExecutionFailed)
    assert Status.FAILED == state.status
    assert 6 == len(state.attempts)
    assert isinstance(decide(StartAttempt(7, WORKER_1, policy, now), state), Rejected)


def test_retry_delay_runs_from_the_end_of_the_failed_attempt() -> None:
    """The delay runs from the end of the failed attempt, not from its start."""
    policy = parse_retries(TARGET, (1, 300))
    state = given(requested(0), started(1, 1, policy=policy))

    actual = recorded(decide(failure(1, 100), state))[-1]

    assert isinstance(actual, RetryScheduled)
    assert at(400) == actual.due_at


def test_same_command_twice_gives_the_same_event_ids() -> None:
    """Event ids are deterministic: recording the same fact twice can be recognised."""
    commands: list[tuple[Command, ExecutionState]] = [
        (RequestExecution(EXECUTION, TARGET, at(0)), initial(EXECUTION)),
        (StartAttempt(1, WORKER_1, POLICY, at(1)), given(requested(0))),
        (RecordSuccess(1, RESULT, at(2)), given(requested(0), started(1, 1))),
        (failure(1, 2), given(requested(0), started(1, 1))),
    ]
    for command, state in commands:
        first = recorded(decide(command, state))
        second = recorded(decide(command, state))
        assert [e.event_id for e in first] == [e.event_id for e in second]
        assert first == second


def test_event_ids_are_unique_within_a_history() -> None:
    """Different facts never share an id, or a reader would drop a real one as a duplicate."""
    ids = [e.event_id for e in FAIL_THEN_SUCCEED]

    assert len(ids) == len(set(ids))


def test_decision_is_pure() -> None:
    """Deciding does not change the state it was given (the decider only returns events)."""
    state = given(requested(0), started(1, 1))
    before = given(requested(0), started(1, 1))

    decide(failure(1, 3), state)

    assert before == state


def test_run_evolves_by_what_was_decided() -> None:
    """``run`` returns the decision and the fold of it; a rejection leaves the state alone."""
    state = given(requested(0))

    decision, after = run(StartAttempt(1, WORKER_1, POLICY, at(1)), state)
    rejection, same = run(StartAttempt(5, WORKER_1, POLICY, at(1)), state)

    assert fold(recorded(decision), state) == after
    assert Status.RUNNING == after.status
    assert isinstance(rejection, Rejected)
    assert same is state


def test_requested_event_carries_the_request() -> None:
    """Target, arguments and idempotency key travel in ExecutionRequested."""
    command = RequestExecution(EXECUTION, TARGET, at(0), args=(1, "a"), kwargs={"k": [1]})

    (actual,) = recorded(decide(command, initial(EXECUTION)))

    assert isinstance(actual, ExecutionRequested)
    assert (TARGET, (1, "a"), {"k": [1]}) == (actual.target, actual.args, actual.kwargs)
    assert timedelta(0) == actual.at - at(0)
