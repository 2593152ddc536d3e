"""One live execution as the supervisor keeps it: its events as written, and a few hints.

The events are kept as their JSON text, not as parsed objects: a backlog of
pending executions then costs about the size of their requests (a parsed
request is several times larger), and a checkpoint writes and reads each one
as a single string. The hints are what the supervisor watches without
validating anything: which attempts are open, which retry it waits for and
when it is due, and who scheduled it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ricochet.engine.state import ExecutionState

RawEvent = dict[str, Any]
"""One event as parsed JSON, not yet validated."""


@dataclass(slots=True)
class Live:
    """One live execution: its events, what to watch in them, and its fold when made."""

    events: list[bytes] = field(default_factory=list)
    open_attempts: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    """Attempts started and not ended: their start time as written, and their worker."""
    scheduled_by: str | None = None
    awaiting: int | None = None
    """The attempt a recorded retry waits for, until an attempt at least that late starts."""
    due_at: str | None = None
    ever_started: bool = False
    folded: ExecutionState | None = None

    def started(self, attempt: int, at: object, worker: object) -> None:
        self.ever_started = True
        self.open_attempts[attempt] = (_text(at), _text(worker))
        if self.awaiting is not None and attempt >= self.awaiting:
            self.awaiting = self.due_at = None

    def attempt_ended(self, attempt: int) -> None:
        self.open_attempts.pop(attempt, None)

    def expect_retry(self, raw: RawEvent, failed_attempt: int) -> None:
        worker, due, awaiting = raw.get("worker"), raw.get("due_at"), raw.get("next_attempt")
        self.scheduled_by = worker if isinstance(worker, str) else None
        self.due_at = due if isinstance(due, str) else None
        self.awaiting = awaiting if type(awaiting) is int else failed_attempt + 1

    def row(self) -> list[Any]:
        """This execution in a checkpoint: plain JSON, events as strings."""
        return [
            [event.decode() for event in self.events],
            [[attempt, at, worker] for attempt, (at, worker) in self.open_attempts.items()],
            self.scheduled_by,
            self.awaiting,
            self.due_at,
            self.ever_started,
        ]


def from_row(row: object) -> Live:
    """The inverse of ``Live.row``; raises ``ValueError`` for anything else."""
    if not (isinstance(row, list) and len(row) == 6):
        raise ValueError("a live execution is a list of 6")
    events, open_attempts, scheduled_by, awaiting, due_at, ever_started = row
    if not isinstance(ever_started, bool):
        raise ValueError("ever started: not a bool")
    if not (isinstance(events, list) and all(isinstance(e, str) for e in events)):
        raise ValueError("events: not a list of strings")
    if not (isinstance(open_attempts, list) and all(_is_open(o) for o in open_attempts)):
        raise ValueError("open attempts: not a list of [attempt, start time, worker]")
    if not all(
        (value is None or isinstance(value, kind))
        for value, kind in ((scheduled_by, str), (awaiting, int), (due_at, str))
    ):
        raise ValueError("hints: wrong types")
    return Live(
        events=[event.encode() for event in events],  # str.encode sizes exactly
        open_attempts={attempt: (at, worker) for attempt, at, worker in open_attempts},
        scheduled_by=scheduled_by,
        awaiting=awaiting,
        due_at=due_at,
        ever_started=ever_started,
    )


def _is_open(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and type(value[0]) is int
        and all(item is None or isinstance(item, str) for item in value[1:])
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
