"""What the active supervisor keeps in memory, and the rules it keeps it by.

Only live executions (requested, running, waiting for a retry) are held, with
the attempts someone must vouch for (``Vigil``) and the idempotency keys inside
the de-duplication window (``KeyWindow``): memory is flat in the length of the
log. Ended executions leave at once; a short memory of them keeps a duplicate
request or start recorded just after the end from reviving one. Everything
here can be written to a checkpoint and restored from it, so a supervisor that
takes over reads only the log after that checkpoint (SPEC section 8).

Pure: time comes in as data (monotonic seconds for the vigil, event times for
keys), and nothing here touches the broker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    Event,
    ExecutionRequested,
    RetryScheduled,
)
from engine.keys import KeyWindow, key_digest
from engine.projection import Projection
from engine.state import ExecutionState, Status
from engine.vigil import Vigil

ENDED_MEMORY = 2_000
"""Recently ended executions remembered, so a duplicate request or start recorded just
after the end cannot revive one. Later stragglers (a zombie's outcome, seconds on)
need no memory: only a request or a start makes the supervisor watch an execution.
A bigger memory only made a busy worker's memory climb (2 MB per 10,000)."""

BEGINNINGS = (ExecutionRequested, AttemptStarted)
"""The events that can make the supervisor watch an execution it does not know."""

AttemptKey = tuple[str, int]


@dataclass(slots=True)
class Watch:
    """Live executions, their vouched-for attempts, recent endings and used keys."""

    vigil: Vigil
    keys: KeyWindow
    projection: Projection = field(default_factory=Projection)
    ended: OrderedDict[str, None] = field(default_factory=OrderedDict)
    scheduled_by: dict[str, str | None] = field(default_factory=dict)
    recovered: set[AttemptKey] = field(default_factory=set)
    ended_memory: int = ENDED_MEMORY

    def note(self, event: Event, now: float) -> None:
        """Fold one event in (``now``: monotonic seconds), keeping the vigil in step."""
        if isinstance(event, ExecutionRequested) and event.idempotency_key is not None:
            self.keys.add(key_digest(event.idempotency_key), event.at.timestamp())
        if event.execution_id in self.ended:
            return
        if event.execution_id not in self.projection.executions and not isinstance(
            event, BEGINNINGS
        ):
            return  # a straggler of an execution ended and forgotten: nothing left to watch
        state = self.projection.apply(event)
        key = (event.execution_id, event.attempt)
        if isinstance(event, AttemptStarted):
            self.vigil.started(key, now)
        elif isinstance(event, AttemptSucceeded | AttemptFailed):
            self.vigil.ended(key)
        elif isinstance(event, RetryScheduled):
            self.scheduled_by[event.execution_id] = event.worker
        if state.is_terminal:
            self.forget(state)

    def forget(self, state: ExecutionState) -> None:
        """An execution ended: nothing of it is kept but its id, for a while."""
        self.projection.executions.pop(state.execution_id, None)
        self.scheduled_by.pop(state.execution_id, None)
        for attempt in state.attempts:
            self.vigil.ended((state.execution_id, attempt.number))
            self.recovered.discard((state.execution_id, attempt.number))
        self.recovered.discard((state.execution_id, state.next_attempt))
        self.ended[state.execution_id] = None
        while len(self.ended) > self.ended_memory:
            self.ended.popitem(last=False)

    def live(self) -> list[ExecutionState]:
        return list(self.projection.executions.values())

    def retry_was_lost(
        self,
        state: ExecutionState,
        now: datetime,
        bound: timedelta,
        alive: Callable[[str | None], bool],
    ) -> bool:
        """Due longer than ``bound`` ago, never started, not yet re-published, and
        whoever scheduled it is silent (it died between recording and publishing)."""
        if state.status is not Status.RETRY_SCHEDULED or state.next_due_at is None:
            return False
        if (state.execution_id, state.next_attempt) in self.recovered:
            return False
        overdue = now - state.next_due_at > bound
        return overdue and not alive(self.scheduled_by.get(state.execution_id))

    def restore(
        self,
        states: Iterable[ExecutionState],
        ended: Iterable[str],
        scheduled_by: dict[str, str | None],
        recovered: Iterable[AttemptKey],
        now: float,
    ) -> None:
        """Take over what a checkpoint says; running attempts get a full loss window."""
        for state in states:
            self.projection.executions[state.execution_id] = state
            if state.status is Status.RUNNING:
                self.vigil.started((state.execution_id, state.next_attempt), now)
        for execution_id in ended:
            self.ended[execution_id] = None
        self.scheduled_by.update(scheduled_by)
        self.recovered.update(recovered)

    def clear(self) -> None:
        """Forget everything (a take-over starts from its checkpoint, not from leftovers)."""
        self.projection.executions.clear()
        self.vigil.vouched.clear()
        self.keys.buckets.clear()
        self.ended.clear()
        self.scheduled_by.clear()
        self.recovered.clear()
