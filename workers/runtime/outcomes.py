"""What an attempt's outcome says: in its log line, and when it cannot be what the body did.

``attempt.ended`` carries the outcome, a failure's error and cause, and what
follows; a success whose result the log refused, or an attempt a shutdown cut
short, becomes a failure with a cause of its own.
"""

from __future__ import annotations

from ricochet.contracts import ErrorInfo, Event, FailureCause, TooLarge
from ricochet.contracts.limits import cut
from ricochet.engine.recovery import scheduled_retry
from ricochet.errors import LimitExceeded
from ricochet.workers.runtime.runner import Raised, Returned

LOGGED_ERROR_CHARS = 500
"""An error message in a log line is cut to this (the events keep it whole)."""


def ended_fields(ran: Returned | Raised, recorded: tuple[Event, ...]) -> dict[str, object]:
    """What ``attempt.ended`` says: the outcome; for a failure, its error and cause; and
    what follows: the next attempt and when it is due, or how the execution ended."""
    fields: dict[str, object] = {"outcome": type(ran).__name__.lower()}
    if isinstance(ran, Raised):
        error = cut(ran.error.message, LOGGED_ERROR_CHARS)
        fields.update(cause=str(ran.cause), error_type=ran.error.type, error=error)
    retry = scheduled_retry(recorded)
    if retry is not None:
        fields.update(next_attempt=retry.next_attempt, due_at=retry.due_at.isoformat())
    elif isinstance(ran, Raised):
        fields["execution"] = (
            "failed" if recorded[-1].type.startswith("execution_") else "cancelled"
        )
    return fields


def unrecordable(err: LimitExceeded) -> Raised:
    """A success whose events the log refused: the attempt fails, with the result's cause."""
    if isinstance(err, TooLarge):
        return Raised(
            ErrorInfo(type="ResultTooLarge", message=str(err)), FailureCause.RESULT_TOO_LARGE
        )
    return Raised(
        ErrorInfo(type="ResultNotReadable", message=str(err)), FailureCause.RESULT_NOT_READABLE
    )


def interrupted() -> Raised:
    return Raised(
        ErrorInfo(
            type="WorkerShutdown",
            message="the worker shut down before the attempt finished within its grace period",
        ),
        FailureCause.WORKER_LOST,
    )
