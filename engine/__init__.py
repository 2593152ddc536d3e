"""The engine: retry policy, decider and fold. Pure: no I/O, clock, randomness or logging."""

from ricochet.engine.commands import (
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
from ricochet.engine.state import (
    TERMINAL,
    AttemptState,
    ExecutionState,
    Status,
    awaiting_attempt,
    initial,
)
from ricochet.errors import InvalidRetryPolicy

__all__ = [
    "TERMINAL",
    "AttemptState",
    "Command",
    "Decision",
    "ExecutionState",
    "InvalidRetryPolicy",
    "NoteRerun",
    "Projection",
    "RecordFailure",
    "RecordSuccess",
    "RejectExecution",
    "Rejected",
    "RequestExecution",
    "StartAttempt",
    "Status",
    "awaiting_attempt",
    "decide",
    "evolve",
    "fold",
    "initial",
    "parse_retries",
    "progress_of",
    "project",
    "retry_delay",
    "run",
    "schedule",
]
