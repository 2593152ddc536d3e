"""The decider: ``decide(command, state) -> events`` and ``evolve(state, event) -> state``.

No I/O, no clock, no randomness, no logging: the events are the trace.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, timedelta
from typing import TypeVar, assert_never

from ricochet.contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CancelRequested,
    Event,
    ExecutionCancelled,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionSucceeded,
    RerunRequested,
    RetryScheduled,
    event_id,
)
from ricochet.engine.commands import (
    CancelExecution,
    Command,
    NoteRerun,
    RecordFailure,
    RecordSuccess,
    Rejected,
    RejectExecution,
    RequestExecution,
    StartAttempt,
)
from ricochet.engine.evolve import evolve
from ricochet.engine.policy import retry_delay
from ricochet.engine.state import ExecutionState, Status, initial

Decision = tuple[Event, ...] | Rejected


def decide(command: Command, state: ExecutionState) -> Decision:
    """The events that record ``command``, or why it does not apply."""
    match command:
        case RequestExecution():
            return _request(command, state)
        case StartAttempt():
            return _start(command, state)
        case RecordSuccess():
            return _succeed(command, state)
        case RecordFailure():
            return _fail(command, state)
        case RejectExecution():
            return _reject(command, state)
        case NoteRerun():
            return _note_rerun(command, state)
        case CancelExecution():
            return _cancel(command, state)
        case _:
            assert_never(command)


def _request(command: RequestExecution, state: ExecutionState) -> Decision:
    if state.status is not Status.UNKNOWN:
        return Rejected(f"execution {state.execution_id} already exists")
    return (
        ExecutionRequested(
            event_id=event_id(command.execution_id, 0, "requested"),
            execution_id=command.execution_id,
            attempt=0,
            at=command.now,
            target=command.target,
            args=command.args,
            kwargs=command.kwargs,
            parent_id=command.parent_id,
            idempotency_key=command.idempotency_key,
            source=command.source,
            rerun_of=command.rerun_of,
        ),
    )


def _start(command: StartAttempt, state: ExecutionState) -> Decision:
    if state.is_terminal:
        return Rejected(f"execution {state.execution_id} has already ended ({state.status})")
    if state.status is Status.RUNNING or command.attempt != state.next_attempt:
        return Rejected(
            f"attempt {command.attempt} is not the one awaited (next is {state.next_attempt},"
            f" status {state.status})"
        )
    if state.cancel_from is not None and command.attempt >= state.cancel_from:
        return Rejected(
            f"execution {state.execution_id} was cancelled from attempt {state.cancel_from}"
        )
    if command.attempt > command.policy.max_attempts:
        return Rejected(
            f"attempt {command.attempt} exceeds the policy's {command.policy.max_attempts}"
        )
    return (
        AttemptStarted(
            event_id=event_id(state.execution_id, command.attempt, "started"),
            execution_id=state.execution_id,
            attempt=command.attempt,
            at=command.now,
            worker=command.worker,
            policy=command.policy,
            claim=command.claim,
        ),
    )


def _running_attempt(state: ExecutionState, attempt: int) -> Rejected | None:
    if state.status is not Status.RUNNING or state.next_attempt != attempt:
        return Rejected(f"attempt {attempt} is not running (status {state.status})")
    return None


def _succeed(command: RecordSuccess, state: ExecutionState) -> Decision:
    if (rejected := _running_attempt(state, command.attempt)) is not None:
        return rejected
    execution_id, attempt = state.execution_id, command.attempt
    return (
        AttemptSucceeded(
            event_id=event_id(execution_id, attempt, "succeeded"),
            execution_id=execution_id,
            attempt=attempt,
            at=command.now,
            worker=command.worker,
            result=command.result,
        ),
        ExecutionSucceeded(
            event_id=event_id(execution_id, attempt, "ended"),
            execution_id=execution_id,
            attempt=attempt,
            at=command.now,
            worker=command.worker,
            result=command.result,
        ),
    )


def _fail(command: RecordFailure, state: ExecutionState) -> Decision:
    if (rejected := _running_attempt(state, command.attempt)) is not None:
        return rejected
    assert state.policy is not None, "a running attempt always has a policy"
    execution_id, attempt = state.execution_id, command.attempt
    failed = AttemptFailed(
        event_id=event_id(execution_id, attempt, "failed"),
        execution_id=execution_id,
        attempt=attempt,
        at=command.now,
        worker=command.worker,
        cause=command.cause,
        error=command.error,
    )
    if state.cancel_from == attempt + 1:
        return (failed,)  # a cancel waits for this attempt: its failure ends the execution
    delay = retry_delay(state.policy, attempt) if command.retryable else None
    if delay is None:
        ended = ExecutionFailed(
            event_id=event_id(execution_id, attempt, "ended"),
            execution_id=execution_id,
            attempt=attempt,
            at=command.now,
            worker=command.worker,
            cause=command.cause,
            error=command.error,
        )
        return (failed, ended)
    retry = RetryScheduled(
        event_id=event_id(execution_id, attempt, "retry"),
        execution_id=execution_id,
        attempt=attempt,
        at=command.now,
        worker=command.worker,
        next_attempt=attempt + 1,
        delay_s=delay,
        due_at=command.now.astimezone(UTC) + timedelta(seconds=delay),
    )
    return (failed, retry)


def _reject(command: RejectExecution, state: ExecutionState) -> Decision:
    """End an execution whose next attempt cannot run: no route, or its message was poison."""
    if state.status not in (Status.PENDING, Status.RETRY_SCHEDULED):
        return Rejected(f"only a waiting execution can be rejected (status {state.status})")
    last_ran = state.next_attempt - 1
    return (
        ExecutionFailed(
            event_id=event_id(state.execution_id, last_ran, "ended"),
            execution_id=state.execution_id,
            attempt=last_ran,
            at=command.now,
            cause=command.cause,
            error=command.error,
        ),
    )


def _note_rerun(command: NoteRerun, state: ExecutionState) -> Decision:
    if state.status is Status.UNKNOWN:
        return Rejected(f"execution {state.execution_id} is not in the log")
    attempt = len(state.attempts)
    return (
        RerunRequested(
            event_id=event_id(state.execution_id, attempt, f"rerun-{command.rerun_id}"),
            execution_id=state.execution_id,
            attempt=attempt,
            at=command.now,
            rerun_id=command.rerun_id,
        ),
    )


def _cancel(command: CancelExecution, state: ExecutionState) -> Decision:
    """Claim the next attempt that would run: at once if nothing runs, else the one after
    the running attempt (which finishes). Nothing to record if a cancel already stops it."""
    if state.status is Status.UNKNOWN:
        return Rejected(f"execution {state.execution_id} is not in the log")
    if state.is_terminal:
        return Rejected(f"execution {state.execution_id} has already ended ({state.status})")
    running = state.status is Status.RUNNING
    claimed = state.next_attempt + 1 if running else state.next_attempt
    if state.cancel_from is not None and state.cancel_from <= claimed:
        return ()
    if running:
        return (_cancel_event(CancelRequested, "cancel-requested", claimed, command, state),)
    return (_cancel_event(ExecutionCancelled, "cancelled", claimed, command, state),)


C = TypeVar("C", ExecutionCancelled, CancelRequested)


def _cancel_event(
    kind: type[C], name: str, claimed: int, command: CancelExecution, state: ExecutionState
) -> C:
    return kind(
        event_id=event_id(state.execution_id, claimed, name),
        execution_id=state.execution_id,
        attempt=claimed,
        at=command.now,
        claim=command.claim,
        reason=command.reason,
        source=command.source,
    )


def fold(events: Iterable[Event], state: ExecutionState | None = None) -> ExecutionState:
    """Apply ``events`` in order; duplicates and stragglers change nothing."""
    current = state
    for event in events:
        current = evolve(current or initial(event.execution_id), event)
    if current is None:
        raise ValueError("fold needs a state or at least one event")
    return current


def run(command: Command, state: ExecutionState) -> tuple[Decision, ExecutionState]:
    """Decide, then evolve by what was decided: the state after recording ``command``."""
    decision = decide(command, state)
    if isinstance(decision, Rejected):
        return decision, state
    return decision, fold(decision, state)


__all__ = ["Decision", "decide", "evolve", "fold", "run"]
