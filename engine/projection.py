"""A projection: the fold of the whole log, one state per execution.

Pure and in memory; the projector process feeds it and a fresh fold of the
same log must give an equal projection (SPEC 7.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ricochet.contracts import Event
from ricochet.engine.evolve import evolve
from ricochet.engine.state import ExecutionState, initial


@dataclass(slots=True)
class Projection:
    """Execution id -> state, plus how many events were applied and how many were old news."""

    executions: dict[str, ExecutionState] = field(default_factory=dict)
    applied: int = 0
    ignored: int = 0

    def apply(self, event: Event) -> ExecutionState:
        """Fold one event in; returns the execution's new state."""
        before = self.executions.get(event.execution_id)
        current = before or initial(event.execution_id)
        after = evolve(current, event)
        if before is None:
            self.executions[event.execution_id] = after
        if after is current:
            self.ignored += 1  # old news, or a cancel of an execution not in the log
        else:
            self.executions[event.execution_id] = after
            self.applied += 1
        return after

    def apply_all(self, events: Iterable[Event]) -> Projection:
        for event in events:
            self.apply(event)
        return self

    def get(self, execution_id: str) -> ExecutionState | None:
        return self.executions.get(execution_id)


def project(events: Iterable[Event]) -> Projection:
    """A fresh fold of ``events``."""
    return Projection().apply_all(events)
