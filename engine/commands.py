"""Commands: what a worker or client asks the decider to record (imperative names).

Time comes in as data (``now``) so the decider stays a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ricochet.contracts import ErrorInfo, FailureCause, Json, RetryPolicy


@dataclass(frozen=True, slots=True)
class RequestExecution:
    """Start a new execution of ``target``."""

    execution_id: str
    target: str
    now: datetime
    args: tuple[Json, ...] = ()
    kwargs: dict[str, Json] = field(default_factory=dict)
    parent_id: str | None = None
    idempotency_key: str | None = None
    source: str = "api"
    rerun_of: str | None = None


@dataclass(frozen=True, slots=True)
class StartAttempt:
    """``worker`` is about to run attempt ``attempt`` under ``policy``; ``claim`` names
    this one try (see ``AttemptStarted``)."""

    attempt: int
    worker: str
    policy: RetryPolicy
    now: datetime
    claim: str | None = None


@dataclass(frozen=True, slots=True)
class RecordSuccess:
    """Attempt ``attempt`` returned ``result``."""

    attempt: int
    result: Json
    now: datetime
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """Attempt ``attempt`` failed; ``retryable=False`` ends the execution at once."""

    attempt: int
    cause: FailureCause
    error: ErrorInfo
    now: datetime
    worker: str | None = None
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class RejectExecution:
    """The execution's next attempt cannot run (no route to its target, a poison message)."""

    error: ErrorInfo
    now: datetime
    cause: FailureCause = FailureCause.REJECTED


@dataclass(frozen=True, slots=True)
class NoteRerun:
    """This execution was re-run as ``rerun_id``."""

    rerun_id: str
    now: datetime


@dataclass(frozen=True, slots=True)
class CancelExecution:
    """Stop the execution: no attempt starts from now on; one that runs finishes.

    ``claim`` names this one try, as a start's does (``contracts.CancelBase``)."""

    claim: str
    now: datetime
    reason: str = ""
    source: str = "api"


Command = (
    RequestExecution
    | StartAttempt
    | RecordSuccess
    | RecordFailure
    | RejectExecution
    | NoteRerun
    | CancelExecution
)


@dataclass(frozen=True, slots=True)
class Rejected:
    """The command does not apply to this state; nothing is recorded."""

    reason: str
