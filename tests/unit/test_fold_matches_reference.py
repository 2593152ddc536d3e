"""The fold equals a reference fold written the plain way, on any events in any order.

``engine.evolve`` is written for speed (one generated copy per event, a phase
table); the reference below is the same rules written the obvious way, with
``match`` and ``dataclasses.replace``. Hypothesis feeds both the same events, valid histories or
not: duplicates, stragglers, logs that begin mid-attempt, reruns, other executions.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from typing import Any, assert_never

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ricochet.contracts import (
    AT_MOST_ONCE,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CancelRequested,
    ChildReused,
    ErrorInfo,
    Event,
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionSucceeded,
    ReplyRequested,
    ReplySent,
    RerunRequested,
    RetryPolicy,
    RetryScheduled,
    decode_batch,
    encode_batch,
)
from ricochet.engine import (
    TERMINAL,
    AttemptState,
    ExecutionState,
    Status,
    evolve,
    fold,
    initial,
    project,
)
from ricochet.engine.children import child_id, reused
from ricochet.engine.state import CancelNote
from tests.unit.builders import (
    EXECUTION,
    POLICY,
    RESULT,
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

OTHER = "aa11bb22cc33dd44ee55ff6677889900"


def reference_progress(event: Event) -> tuple[int, int]:
    match event:
        case ExecutionRequested():
            return (0, 0)
        case AttemptStarted() | ChildReused() | ExecutionCancelled() | CancelRequested():
            return (event.attempt, 1)
        case AttemptSucceeded() | AttemptFailed():
            return (event.attempt, 2)
        case RetryScheduled():
            return (event.attempt, 3)
        case ExecutionSucceeded() | ExecutionFailed() | RerunRequested():
            return (event.attempt, 4)
        case ReplyRequested() | ReplySent():  # the supervisor's notes: never progress
            return (event.attempt, 4)
        case _:
            assert_never(event)


def reference_evolve(state: ExecutionState, event: Event) -> ExecutionState:
    """SPEC section 3's fold, one ``replace`` per change."""
    if isinstance(event, RerunRequested):
        if event.rerun_id in state.reruns:
            return state
        return replace(state, reruns=(*state.reruns, event.rerun_id))
    if isinstance(event, ExecutionCancelled | CancelRequested):
        return reference_cancel(state, event)
    if isinstance(event, ReplyRequested | ReplySent):
        return state
    progress = reference_progress(event)
    if state.status in TERMINAL or progress <= state.progress:
        return state
    if state.cancel_from is not None and event.attempt >= state.cancel_from:
        return state
    after = reference_apply(replace(state, progress=progress), event)
    ended = isinstance(event, AttemptFailed) and event.attempt + 1 == state.cancel_from
    if ended:
        return reference_end_cancelled(after, event.at, f"while attempt {event.attempt} ran")
    return after


def reference_cancel(
    state: ExecutionState, event: ExecutionCancelled | CancelRequested
) -> ExecutionState:
    """A cancel claims attempt ``event.attempt``: it ends an execution waiting for that
    attempt, else waits for the one before it to fail; it loses to a start of its
    attempt or an end already there, and to an earlier cancel of an earlier attempt."""
    if state.status in TERMINAL or state.progress >= (event.attempt, 1):
        return state
    if state.cancel is not None and state.cancel.attempt <= event.attempt:
        return state
    noted = replace(state, cancel=CancelNote(event.attempt, event.reason, event.at))
    waiting = state.status in (Status.PENDING, Status.RETRY_SCHEDULED)
    if waiting and state.next_attempt == event.attempt:
        before = "it started" if event.attempt == 1 else f"attempt {event.attempt}"
        return reference_end_cancelled(noted, event.at, f"before {before}")
    return noted


def reference_end_cancelled(state: ExecutionState, at: Any, when: str) -> ExecutionState:
    message = f"execution {state.execution_id} was cancelled {when}"
    if when.startswith("while"):
        message += "; that attempt failed and was not retried"
    if state.cancel is not None and state.cancel.reason:
        message += f": {state.cancel.reason}"
    return replace(
        state,
        status=Status.CANCELLED,
        ended_at=at,
        next_due_at=None,
        next_delay_s=None,
        error=ErrorInfo(type="Cancelled", message=message),
    )


def reference_apply(state: ExecutionState, event: Event) -> ExecutionState:
    """What a fact that is news changes, the plain way."""
    match event:
        case ExecutionRequested():
            return replace(
                state,
                status=Status.PENDING,
                target=event.target,
                args=event.args,
                kwargs=event.kwargs,
                parent_id=event.parent_id,
                idempotency_key=event.idempotency_key,
                rerun_of=event.rerun_of,
                requested_at=event.at,
            )
        case AttemptStarted():
            attempt = AttemptState(
                number=event.attempt,
                worker=event.worker,
                started_at=event.at,
                delay_before_s=state.next_delay_s,
                due_at=state.next_due_at,
            )
            return replace(
                state,
                status=Status.RUNNING,
                policy=event.policy,
                next_attempt=event.attempt,
                next_due_at=None,
                next_delay_s=None,
                attempts=(*state.attempts, attempt),
            )
        case AttemptSucceeded():
            return reference_end_attempt(
                state, event.attempt, ended_at=event.at, outcome="succeeded"
            )
        case AttemptFailed():
            return reference_end_attempt(
                state,
                event.attempt,
                ended_at=event.at,
                outcome="failed",
                cause=event.cause,
                error=event.error,
                worker=event.worker,  # unless the start already named one
            )
        case RetryScheduled():
            return replace(
                state,
                status=Status.RETRY_SCHEDULED,
                next_attempt=event.next_attempt,
                next_due_at=event.due_at,
                next_delay_s=event.delay_s,
            )
        case ExecutionSucceeded():
            return replace(state, status=Status.SUCCEEDED, result=event.result, ended_at=event.at)
        case ExecutionFailed():
            return replace(
                state, status=Status.FAILED, error=event.error, cause=event.cause, ended_at=event.at
            )
        case ChildReused() | RerunRequested():  # a note; a rerun never gets this far
            return state
        case ExecutionCancelled() | CancelRequested():  # handled before
            return state
        case ReplyRequested() | ReplySent():
            return state
        case _:
            assert_never(event)


def reference_end_attempt(state: ExecutionState, number: int, **changes: Any) -> ExecutionState:
    """Attempt ``number`` ended: the last attempt, or a new one if the log began after its start."""
    if state.attempts and state.attempts[-1].number == number:
        earlier, last = state.attempts[:-1], state.attempts[-1]
    else:
        earlier, last = state.attempts, AttemptState(number=number)
    if "worker" in changes:
        changes["worker"] = last.worker or changes["worker"]
    return replace(state, attempts=(*earlier, replace(last, **changes)))


def reference_project(events: list[Event]) -> tuple[dict[str, ExecutionState], int, int]:
    """States by execution, and how many events changed one and how many did not."""
    states: dict[str, ExecutionState] = {}
    applied = ignored = 0
    for event in events:
        before = states.get(event.execution_id) or ExecutionState(execution_id=event.execution_id)
        after = reference_evolve(before, event)
        if after is before:
            ignored += 1
        else:
            applied += 1
        states[event.execution_id] = after
    return states, applied, ignored


attempts = st.integers(min_value=1, max_value=3)
seconds = st.integers(min_value=0, max_value=100)
workers = st.sampled_from([WORKER_1, WORKER_2])
policies = st.sampled_from(
    [POLICY, AT_MOST_ONCE, RetryPolicy(retries=2, delay_min=10.0, delay_max=20.0)]
)


def reruns(draw_id: str, attempt: int, second: int) -> RerunRequested:
    return RerunRequested(
        event_id=f"{EXECUTION}/{attempt}/rerun-{draw_id}",
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(second),
        rerun_id=draw_id,
    )


def cancels(attempt: int, second: int, reason: str, running: bool) -> Event:
    kind = CancelRequested if running else ExecutionCancelled
    return kind(
        event_id=f"{EXECUTION}/{attempt}/{kind.__name__}",
        execution_id=EXECUTION,
        attempt=attempt,
        at=at(second),
        claim=f"claim-{second}",
        reason=reason,
    )


any_event: st.SearchStrategy[Event] = st.one_of(
    st.builds(requested, seconds),
    st.builds(started, attempts, seconds, workers, policies),
    st.builds(started, attempts, seconds, workers, policies, st.just(OTHER)),
    st.builds(succeeded, attempts, seconds, st.sampled_from([None, RESULT])),
    st.builds(failed, attempts, seconds, st.sampled_from([WORKER_1, None])),
    st.builds(retry_scheduled, attempts, seconds, st.sampled_from([0.0, 10.0, 12.5])),
    st.builds(execution_succeeded, attempts, seconds, st.sampled_from([None, RESULT])),
    st.builds(execution_failed, attempts, seconds),
    st.builds(
        reused,
        st.just(EXECUTION),
        attempts,
        st.just(0),
        st.just(child_id(EXECUTION, 0)),
        st.just("billing.tasks:charge"),
        seconds.map(at),
    ),
    st.builds(reruns, st.sampled_from(["x", "y"]), attempts, seconds),
    st.builds(
        cancels,
        st.integers(min_value=1, max_value=4),
        seconds,
        st.sampled_from(["", "not needed"]),
        st.booleans(),
    ),
)
"""Any event of one execution (and some starts of another), in no particular order."""


@settings(max_examples=400)
@given(st.lists(any_event, max_size=14))
def test_fold_equals_the_reference_on_any_events(events: list[Event]) -> None:
    """Same states, same applied/ignored counts, step by step and for the whole log."""
    # Given any events, in any order
    # When both folds take them one at a time
    states, applied, ignored = reference_project(events)
    projection = project(events)
    # Then every state and both counts are the same
    assert states == projection.executions
    assert (applied, ignored) == (projection.applied, projection.ignored)
    for execution_id, state in states.items():
        assert state == fold(e for e in events if e.execution_id == execution_id)


@settings(max_examples=200)
@given(st.lists(any_event, min_size=1, max_size=14))
def test_each_step_is_old_news_exactly_when_the_reference_says(events: list[Event]) -> None:
    """``evolve`` returns the very state it was given when, and only when, nothing changed."""
    for execution_id in {e.execution_id for e in events}:
        mine = initial(execution_id)
        theirs = ExecutionState(execution_id=execution_id)
        for event in (e for e in events if e.execution_id == execution_id):
            mine_after, theirs_after = evolve(mine, event), reference_evolve(theirs, event)
            assert (theirs_after is theirs) == (mine_after is mine)
            assert theirs_after == mine_after
            mine, theirs = mine_after, theirs_after


@settings(max_examples=100)
@given(st.lists(any_event, min_size=1, max_size=14))
def test_folded_states_are_ordinary_frozen_values(events: list[Event]) -> None:
    """What the fold builds is exactly ``ExecutionState`` and ``AttemptState``, frozen."""
    for state in project(events).executions.values():
        assert type(state) is ExecutionState
        assert all(type(attempt) is AttemptState for attempt in state.attempts)
        with pytest.raises(FrozenInstanceError):
            state.status = Status.UNKNOWN  # type: ignore[misc]
        for attempt in state.attempts:
            with pytest.raises(FrozenInstanceError):
                attempt.outcome = "changed"  # type: ignore[misc]


@settings(max_examples=100)
@given(st.lists(any_event, min_size=1, max_size=14))
def test_decoded_events_fold_like_the_originals(events: list[Event]) -> None:
    """From bytes or from memory, the fold is the same (the projector reads bytes)."""
    decoded = list(decode_batch(encode_batch(events)))

    assert project(events).executions == project(decoded).executions
