"""Execution state: what the fold of an execution's events says about it.

Immutable values, so a projection can be compared with a fresh fold (SPEC 7.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts import ErrorInfo, FailureCause, Json, RetryPolicy


class Status(StrEnum):
    """Where an execution is; the last two are terminal."""

    UNKNOWN = "unknown"
    PENDING = "pending"
    RUNNING = "running"
    RETRY_SCHEDULED = "retry_scheduled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED})


@dataclass(frozen=True, slots=True)
class AttemptState:
    """One attempt: when and where it ran, and how it ended."""

    number: int
    worker: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    cause: FailureCause | None = None
    error: ErrorInfo | None = None
    delay_before_s: float | None = None
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """The fold of one execution's events.

    ``progress`` is the (attempt, phase) of the last fact applied: a fact at or
    before it is a duplicate or a late straggler and changes nothing.
    """

    execution_id: str
    status: Status = Status.UNKNOWN
    target: str | None = None
    args: tuple[Json, ...] = ()
    kwargs: dict[str, Json] = field(default_factory=dict)
    parent_id: str | None = None
    idempotency_key: str | None = None
    rerun_of: str | None = None
    reruns: tuple[str, ...] = ()
    requested_at: datetime | None = None
    policy: RetryPolicy | None = None
    attempts: tuple[AttemptState, ...] = ()
    next_attempt: int = 1
    next_due_at: datetime | None = None
    next_delay_s: float | None = None
    result: Json = None
    error: ErrorInfo | None = None
    cause: FailureCause | None = None
    ended_at: datetime | None = None
    progress: tuple[int, int] = (0, -1)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def initial(execution_id: str) -> ExecutionState:
    """Nothing known yet about ``execution_id``."""
    return ExecutionState(execution_id=execution_id)


def awaiting_attempt(execution_id: str, target: str, attempt: int) -> ExecutionState:
    """The state a work message for ``attempt`` implies, for a worker that holds no log.

    A worker deciding about one attempt needs only that the execution is live
    and waiting for this attempt; the rest of the history is on the stream.
    """
    status = Status.PENDING if attempt == 1 else Status.RETRY_SCHEDULED
    return ExecutionState(
        execution_id=execution_id,
        status=status,
        target=target,
        next_attempt=attempt,
        progress=(attempt - 1, 3) if attempt > 1 else (0, 0),
    )
