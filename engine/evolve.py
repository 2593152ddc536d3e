"""``evolve(state, event) -> state``: how each fact changes an execution's state.

``ChildReused`` is a note in the parent's history, not a change of its state: it
sits at its attempt's start, so it is always old news to the fold.

Every fact has a place in the execution's progress: (attempt, phase). A fact at
or before the current progress is a duplicate or a late straggler (a zombie
worker's result after its attempt was declared lost, say) and is ignored, so
folding is idempotent and the first recorded outcome of an attempt wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import assert_never

from contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    ChildReused,
    Event,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionSucceeded,
    RerunRequested,
    RetryScheduled,
)
from engine.state import AttemptState, ExecutionState, Status

PHASE_REQUESTED = 0
PHASE_STARTED = 1
PHASE_ENDED = 2
PHASE_RETRY = 3
PHASE_TERMINAL = 4


def progress_of(event: Event) -> tuple[int, int]:
    """Where ``event`` sits in its execution's history."""
    match event:
        case ExecutionRequested():
            return (0, PHASE_REQUESTED)
        case AttemptStarted() | ChildReused():
            return (event.attempt, PHASE_STARTED)
        case AttemptSucceeded() | AttemptFailed():
            return (event.attempt, PHASE_ENDED)
        case RetryScheduled():
            return (event.attempt, PHASE_RETRY)
        case ExecutionSucceeded() | ExecutionFailed() | RerunRequested():
            return (event.attempt, PHASE_TERMINAL)
        case _:
            assert_never(event)


def evolve(state: ExecutionState, event: Event) -> ExecutionState:
    """The state after ``event``; unchanged when the event is old news.

    A rerun is noted on the original whatever its progress (it has usually ended).
    """
    if isinstance(event, RerunRequested):
        if event.rerun_id in state.reruns:
            return state
        return replace(state, reruns=(*state.reruns, event.rerun_id))
    progress = progress_of(event)
    if state.is_terminal or progress <= state.progress:
        return state
    return replace(_apply(state, event), progress=progress)


def _apply(state: ExecutionState, event: Event) -> ExecutionState:
    match event:
        case ExecutionRequested():
            return _requested(state, event)
        case AttemptStarted():
            return _started(state, event)
        case AttemptSucceeded():
            ended = event.at
            return _with_attempt(
                state, event.attempt, lambda a: replace(a, ended_at=ended, outcome="succeeded")
            )
        case AttemptFailed():
            return _with_attempt(state, event.attempt, lambda a: _attempt_failed(a, event))
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
        case ChildReused() | RerunRequested():
            return state
        case _:
            assert_never(event)


def _requested(state: ExecutionState, event: ExecutionRequested) -> ExecutionState:
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


def _attempt_failed(attempt: AttemptState, event: AttemptFailed) -> AttemptState:
    return replace(
        attempt,
        ended_at=event.at,
        outcome="failed",
        cause=event.cause,
        error=event.error,
        worker=attempt.worker or event.worker,
    )


def _started(state: ExecutionState, event: AttemptStarted) -> ExecutionState:
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


def _with_attempt(
    state: ExecutionState, number: int, update: Callable[[AttemptState], AttemptState]
) -> ExecutionState:
    """Update attempt ``number``, creating it if the log began after it started."""
    attempts = state.attempts
    if attempts and attempts[-1].number == number:
        return replace(state, attempts=(*attempts[:-1], update(attempts[-1])))
    return replace(state, attempts=(*attempts, update(AttemptState(number=number))))
