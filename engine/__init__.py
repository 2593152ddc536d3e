"""The engine: retry policy, decider and fold. Pure: no I/O, clock, randomness or logging."""

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
from ricochet.engine.decider import Decision, decide, fold, run
from ricochet.engine.evolve import evolve, progress_of
from ricochet.engine.policy import parse_retries, retry_delay, schedule
from ricochet.engine.projection import Projection, project
from ricochet.engine.retry_filter import RETRY_ANY, RetryFilter, parse_retry_filter
from ricochet.engine.state import (
    TERMINAL,
    AttemptState,
    ExecutionState,
    Status,
    awaiting_attempt,
    initial,
)
from ricochet.errors import InvalidRetryFilter, InvalidRetryPolicy

__all__ = [
    "RETRY_ANY",
    "TERMINAL",
    "AttemptState",
    "CancelExecution",
    "Command",
    "Decision",
    "ExecutionState",
    "InvalidRetryFilter",
    "InvalidRetryPolicy",
    "NoteRerun",
    "Projection",
    "RecordFailure",
    "RecordSuccess",
    "RejectExecution",
    "Rejected",
    "RequestExecution",
    "RetryFilter",
    "StartAttempt",
    "Status",
    "awaiting_attempt",
    "decide",
    "evolve",
    "fold",
    "initial",
    "parse_retries",
    "parse_retry_filter",
    "progress_of",
    "project",
    "retry_delay",
    "run",
    "schedule",
]
