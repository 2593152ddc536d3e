"""The engine: retry policy, decider and fold. Pure: no I/O, clock, randomness or logging."""

from engine.commands import (
    Command,
    NoteRerun,
    RecordFailure,
    RecordSuccess,
    Rejected,
    RejectExecution,
    RequestExecution,
    StartAttempt,
)
from engine.decider import Decision, decide, fold, run
from engine.evolve import evolve, progress_of
from engine.policy import InvalidRetryPolicy, delay_after, parse_retries, retry_delay, schedule
from engine.projection import Projection, project
from engine.state import TERMINAL, AttemptState, ExecutionState, Status, awaiting_attempt, initial

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
    "delay_after",
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
