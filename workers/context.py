"""What a running function can know about its own attempt."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AttemptContext:
    """The execution and attempt the current code runs as."""

    execution_id: str
    attempt: int
    target: str
    worker: str


_current: ContextVar[AttemptContext | None] = ContextVar("ricochet_attempt", default=None)


def current_attempt() -> AttemptContext | None:
    """The attempt this code runs in, or None outside a worker."""
    return _current.get()


def set_current(context: AttemptContext | None) -> None:
    _current.set(context)
