"""``evolve(state, event) -> state``: how each fact changes an execution's state.

``ChildReused`` is a note in the parent's history, not a change of its state: it
sits at its attempt's start, so it is always old news to the fold.

A cancel (``ExecutionCancelled``, ``CancelRequested``) claims the attempt it names,
as a start would: it wins only if that attempt has not started, and then nothing of
that attempt or later is news any more. It ends the execution at once when nothing
runs; while the attempt before it runs, that attempt's failure ends it (cancelled,
no retry) and its success ends it succeeded (``engine.cancel``).

Every fact has a place in the execution's progress: (attempt, phase). A fact at
or before the current progress is a duplicate or a late straggler (a zombie
worker's result after its attempt was declared lost, say) and is ignored, so
folding is idempotent and the first recorded outcome of an attempt wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CancelRequested,
    ChildReused,
    Event,
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionSucceeded,
    ReplyRequested,
    ReplySent,
    RerunRequested,
    RetryScheduled,
)
from ricochet.engine.cancel import apply_cancel, ends_cancelled
from ricochet.engine.state import (
    AttemptState,
    CancelNote,
    ExecutionState,
    Status,
    with_attempt_changes,
    with_state_changes,
)

PHASE_REQUESTED = 0
PHASE_STARTED = 1
PHASE_ENDED = 2
PHASE_RETRY = 3
PHASE_TERMINAL = 4


PHASES: dict[type[Event], int] = {
    ExecutionRequested: PHASE_REQUESTED,
    AttemptStarted: PHASE_STARTED,
    ChildReused: PHASE_STARTED,
    AttemptSucceeded: PHASE_ENDED,
    AttemptFailed: PHASE_ENDED,
    RetryScheduled: PHASE_RETRY,
    ExecutionSucceeded: PHASE_TERMINAL,
    ExecutionFailed: PHASE_TERMINAL,
    RerunRequested: PHASE_TERMINAL,
    ExecutionCancelled: PHASE_STARTED,
    CancelRequested: PHASE_STARTED,
    ReplyRequested: PHASE_TERMINAL,
    ReplySent: PHASE_TERMINAL,
}
"""Each event type's phase within its attempt (a table: the fold's hottest lookup)."""


CANCELS = (ExecutionCancelled, CancelRequested)


def progress_of(event: Event) -> tuple[int, int]:
    """Where ``event`` sits in its execution's history; a request is always (0, 0)."""
    phase = PHASES[type(event)]
    return (0, phase) if phase == PHASE_REQUESTED else (event.attempt, phase)


def evolve(state: ExecutionState, event: Event) -> ExecutionState:
    """The state after ``event``; unchanged when the event is old news.

    A rerun is noted on the original whatever its progress (it has usually ended);
    a cancel claims its attempt (``engine.cancel``). Each other event makes one copy
    of the state: ``_changes`` says what differs.
    """
    special = SPECIAL.get(type(event))
    if special is not None:
        return special(state, event)
    progress = progress_of(event)
    if state.is_terminal or progress <= state.progress:
        return state
    if state.cancel is not None:
        return _while_cancelling(state, event, progress, state.cancel)
    changes = _changes(state, event)
    changes["progress"] = progress
    return with_state_changes(state, changes)


def _rerun(state: ExecutionState, event: Event) -> ExecutionState:
    assert isinstance(event, RerunRequested)
    if event.rerun_id in state.reruns:
        return state
    return with_state_changes(state, {"reruns": (*state.reruns, event.rerun_id)})


def _cancel(state: ExecutionState, event: Event) -> ExecutionState:
    assert isinstance(event, CANCELS)
    return apply_cancel(state, event)


def _reply_note(state: ExecutionState, _: Event) -> ExecutionState:
    """Replies are the supervisor's business (``engine.replies``): the state stays as it is."""
    return state


SPECIAL: dict[type[Event], Callable[[ExecutionState, Event], ExecutionState]] = {
    RerunRequested: _rerun,
    ReplyRequested: _reply_note,
    ReplySent: _reply_note,
    ExecutionCancelled: _cancel,
    CancelRequested: _cancel,
}
"""Events outside the attempt-by-attempt progress (one table lookup on the hot path)."""


def _while_cancelling(
    state: ExecutionState, event: Event, progress: tuple[int, int], cancel: CancelNote
) -> ExecutionState:
    """A cancel stops attempt ``cancel.attempt`` and later: their claims lost; the failure
    of the attempt just before ends the execution, cancelled."""
    if event.attempt >= cancel.attempt:
        return state
    changes = _changes(state, event)
    changes["progress"] = progress
    if isinstance(event, AttemptFailed) and event.attempt == cancel.attempt - 1:
        changes.update(ends_cancelled(state, event.at, event.attempt))
    return with_state_changes(state, changes)


Changes = dict[str, Any]
"""Field name -> new value, for ``with_state_changes``."""


def _changes(state: ExecutionState, event: Event) -> Changes:
    match event:
        case ExecutionRequested():
            return _requested(event)
        case AttemptStarted():
            return _started(state, event)
        case AttemptSucceeded():
            ended = {"ended_at": event.at, "outcome": "succeeded"}
            return _with_attempt(state, event.attempt, lambda a: with_attempt_changes(a, ended))
        case AttemptFailed():
            return _with_attempt(state, event.attempt, lambda a: _attempt_failed(a, event))
        case RetryScheduled():
            return {
                "status": Status.RETRY_SCHEDULED,
                "next_attempt": event.next_attempt,
                "next_due_at": event.due_at,
                "next_delay_s": event.delay_s,
            }
        case ExecutionSucceeded():
            return {"status": Status.SUCCEEDED, "result": event.result, "ended_at": event.at}
        case ExecutionFailed():
            return {
                "status": Status.FAILED,
                "error": event.error,
                "cause": event.cause,
                "ended_at": event.at,
            }
        case (
            ChildReused()
            | RerunRequested()
            | ExecutionCancelled()
            | CancelRequested()
            | ReplyRequested()
            | ReplySent()
        ):
            return {}  # notes, or handled before (``evolve``)
        case _:
            assert_never(event)


def _requested(event: ExecutionRequested) -> Changes:
    return {
        "status": Status.PENDING,
        "target": event.target,
        "args": event.args,
        "kwargs": event.kwargs,
        "parent_id": event.parent_id,
        "idempotency_key": event.idempotency_key,
        "rerun_of": event.rerun_of,
        "requested_at": event.at,
    }


def _attempt_failed(attempt: AttemptState, event: AttemptFailed) -> AttemptState:
    return with_attempt_changes(
        attempt,
        {
            "ended_at": event.at,
            "outcome": "failed",
            "cause": event.cause,
            "error": event.error,
            "worker": attempt.worker or event.worker,
        },
    )


def _started(state: ExecutionState, event: AttemptStarted) -> Changes:
    attempt = AttemptState(
        number=event.attempt,
        worker=event.worker,
        started_at=event.at,
        delay_before_s=state.next_delay_s,
        due_at=state.next_due_at,
    )
    return {
        "status": Status.RUNNING,
        "policy": event.policy,
        "next_attempt": event.attempt,
        "next_due_at": None,
        "next_delay_s": None,
        "attempts": (*state.attempts, attempt),
    }


def _with_attempt(
    state: ExecutionState, number: int, update: Callable[[AttemptState], AttemptState]
) -> Changes:
    """Update attempt ``number``, creating it if the log began after it started."""
    attempts = state.attempts
    if attempts and attempts[-1].number == number:
        return {"attempts": (*attempts[:-1], update(attempts[-1]))}
    return {"attempts": (*attempts, update(AttemptState(number=number)))}
