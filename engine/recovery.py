"""What the supervisor decides in place of a worker that is gone (SPEC 7.4).

Pure: the supervisor's ``Recovery`` records what is decided here and publishes
the work. A lost attempt fails with cause ``worker_lost`` and follows its
policy; an execution whose every attempt, and more than one, was lost is
likely poison (its message kills workers) and is parked for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ricochet.contracts import ErrorInfo, Event, FailureCause, RetryScheduled, WorkMessage
from ricochet.engine.commands import RecordFailure, Rejected
from ricochet.engine.decider import run
from ricochet.engine.state import ExecutionState, Status


@dataclass(frozen=True, slots=True)
class Loss:
    """What losing an attempt's worker comes to."""

    events: tuple[Event, ...]
    """To record: the failure, then a retry or the execution's end."""
    retry: RetryScheduled | None
    """The retry to publish, if the policy allows one."""
    poison: bool
    """Park the work for a person: every attempt (more than one) lost its worker."""
    after: ExecutionState
    """The execution once ``events`` are folded in."""


NO_REQUEST = "no execution_requested on the log: its work (target, arguments) cannot be rebuilt"
"""Why the supervisor cannot re-publish the work of an execution it knows only from its
attempts: a forged work message, or one whose request the log no longer holds."""


def work_of(state: ExecutionState) -> WorkMessage | None:
    """The work message of an execution, rebuilt from its ``ExecutionRequested``; None
    when the log holds none (``NO_REQUEST``). The log is input like any other: what it
    lacks is reported by the caller, never asserted on."""
    if state.target is None:
        return None
    return WorkMessage(
        execution_id=state.execution_id,
        target=state.target,
        args=state.args,
        kwargs=state.kwargs,
        parent_id=state.parent_id,
    )


def scheduled_retry(events: tuple[Event, ...]) -> RetryScheduled | None:
    """The retry these events schedule, if any."""
    return next((e for e in events if isinstance(e, RetryScheduled)), None)


def looks_poisoned(state: ExecutionState) -> bool:
    """Every attempt, and more than one, lost its worker: a single loss (a retries=0 task
    that shared a worker with a crash) says nothing about the message itself."""
    attempts = state.attempts
    return len(attempts) > 1 and all(a.cause is FailureCause.WORKER_LOST for a in attempts)


def judge_loss(
    state: ExecutionState,
    attempt: int,
    worker: str | None,
    loss_window_s: float,
    at: datetime,
    supervisor: str,
) -> Loss | None:
    """Attempt ``attempt`` lost its worker: what to record and do; None if it already ended."""
    error = ErrorInfo(
        type="WorkerLost",
        message=(
            f"worker {worker} stopped vouching for attempt {attempt} (no heartbeat listed it"
            f" for {loss_window_s:g} s)"
        ),
    )
    retryable = state.target is not None
    command = RecordFailure(attempt, FailureCause.WORKER_LOST, error, at, supervisor, retryable)
    decision, after = run(command, state)
    if isinstance(decision, Rejected):
        return None
    retry = scheduled_retry(decision) if retryable else None
    poison = retryable and retry is None and after.status is Status.FAILED and looks_poisoned(after)
    return Loss(decision, retry, poison, after)
