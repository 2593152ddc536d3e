"""Cancelling an execution: claim the next attempt on the log, then read who won.

The canceller folds the execution's events from the log, asks the decider what
to record (``engine.CancelExecution``), records it, and reads the log again:
the fold then says whether the cancel's claim came first (the execution is
cancelled, or will end with its running attempt) or a worker's start of the same
attempt did, in which case it cancels again, now while that attempt runs. The
fold and every worker judge claims by the same rule (the first in log order), so
what the canceller reads is what the workers do.

It reads the whole retained log once (like ``ricochet status``), then only what
came after.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from aio_pika.abc import AbstractRobustConnection

from ricochet.contracts import Event, decode_event, encode_json
from ricochet.contracts.events import MAX_REASON_CHARS
from ricochet.engine import (
    CancelExecution,
    ExecutionState,
    Rejected,
    Status,
    decide,
    fold,
    initial,
)
from ricochet.errors import CannotCancel, LimitExceeded, UnknownExecution
from ricochet.workers.amqp.topology import Names
from ricochet.workers.clock import Clock
from ricochet.workers.log.reader import Entry, Offset, scan_log
from ricochet.workers.log.recorder import EventRecorder

MAX_TRIES = 8
"""Cancels recorded at most: each one after the first follows an attempt that started
first, and attempts are few (1 + retries)."""


@dataclass(slots=True)
class History:
    """One execution's events as read from the log, folded, and where reading stopped."""

    execution_id: str
    events: list[Event] = field(default_factory=list)
    next_offset: Offset = "first"

    def take(self, entry: Entry) -> None:
        """Keep this execution's events (validated); parse nothing else."""
        self.next_offset = entry.offset + 1
        for raw in entry.raw:
            if isinstance(raw, dict) and raw.get("execution_id") == self.execution_id:
                try:
                    self.events.append(decode_event(encode_json(raw)))
                except Exception:  # unreadable: left out of the fold, as every reader does
                    continue

    @property
    def state(self) -> ExecutionState:
        return fold(self.events, initial(self.execution_id))


@dataclass(frozen=True, slots=True)
class Canceller:
    """What cancelling needs: the log to read and a recorder to write to it."""

    connection: AbstractRobustConnection
    names: Names
    recorder: EventRecorder
    clock: Clock
    source: str = "api"

    async def cancel(self, execution_id: str, reason: str = "") -> ExecutionState:
        """The execution's state once the cancel is on the log: ``CANCELLED``, or still
        running with ``cancel_from`` set (its running attempt finishes, nothing after it).

        Raises ``UnknownExecution`` if the log has no such execution, ``CannotCancel`` if
        it has ended (before the cancel, or while it was being recorded), and
        ``LimitExceeded`` (a ``ValueError``) for a reason over ``MAX_REASON_CHARS``.
        """
        if len(reason) > MAX_REASON_CHARS:
            raise LimitExceeded(
                f"the reason is {len(reason)} characters, over the limit of {MAX_REASON_CHARS}"
            )
        history = History(execution_id)
        await self._read(history)
        for _ in range(MAX_TRIES):
            before = history.state
            command = CancelExecution(uuid.uuid4().hex, self.clock(), reason, self.source)
            decision = decide(command, before)
            if isinstance(decision, Rejected):
                raise _refusal(before, decision.reason)
            if not decision:
                return before  # a cancel already waits for the running attempt
            await self.recorder.record(decision)
            await self._read(history)
            after = history.state
            if after.cancel_from is not None and after.cancel_from <= decision[0].attempt:
                return after  # this cancel's claim came first (or another's, as early)
            if after.is_terminal:
                ended = f"execution {execution_id} ended ({after.status}) before the cancel"
                raise _refusal(after, ended)
        raise CannotCancel(f"execution {execution_id}: new attempts kept starting first")

    async def _read(self, history: History) -> None:
        await scan_log(self.connection, self.names, history.next_offset, history.take, raw=True)


def _refusal(state: ExecutionState, reason: str) -> CannotCancel | UnknownExecution:
    if state.status is Status.UNKNOWN:
        return UnknownExecution(f"no execution {state.execution_id} in the log")
    return CannotCancel(f"{reason}: nothing to cancel")
