"""What a running function can know about its own attempt."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from ricochet.contracts import Json


class Children(Protocol):
    """How code in an attempt calls other tasks as child executions (see ``runtime.children``)."""

    def call(self, target: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any: ...

    def submit(self, target: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class AttemptContext:
    """The execution and attempt the current code runs as."""

    execution_id: str
    attempt: int
    target: str
    worker: str
    children: Children | None = field(default=None, compare=False)


__all__ = ["AttemptContext", "Children", "Json", "current_attempt", "set_current"]


_current: ContextVar[AttemptContext | None] = ContextVar("ricochet_attempt", default=None)


def current_attempt() -> AttemptContext | None:
    """The attempt this code runs in, or None outside a worker."""
    return _current.get()


def set_current(context: AttemptContext | None) -> None:
    _current.set(context)
