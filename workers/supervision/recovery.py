"""What the supervisor records and publishes in place of a worker that is gone."""

from __future__ import annotations

from collections.abc import Callable

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import PublishError

from ricochet.contracts import (
    EXECUTION_HEADER,
    ORIGINAL_SHA256_HEADER,
    REASON_HEADER,
    ErrorInfo,
    Event,
    WorkMessage,
    decode,
    encode,
)
from ricochet.engine import (
    ExecutionState,
    Rejected,
    RejectExecution,
    Status,
    run,
)
from ricochet.engine.recovery import NO_REQUEST, judge_loss, work_of
from ricochet.errors import DecodeError
from ricochet.workers.clock import Clock
from ricochet.workers.delivery.disposition import Retry
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

log = get_logger(__name__)


class Recovery:
    """Records lost attempts and abandoned executions, and re-publishes their work."""

    def __init__(
        self, settings: Settings, recorder: EventRecorder, settler: Settler, clock: Clock
    ) -> None:
        self._settings = settings
        self._recorder = recorder
        self._settler = settler
        self._clock = clock
        self.unrecoverable = 0
        """Executions the log cannot rebuild the work of, reported and left (for the metrics)."""

    async def lose(
        self, state: ExecutionState, attempt: int, worker: str | None, supervisor: str
    ) -> tuple[Event, ...]:
        """Attempt ``attempt`` lost its worker: record it, then follow the policy."""
        window = self._settings.loss_window_s
        loss = judge_loss(state, attempt, worker, window, self._clock(), supervisor)
        if loss is None:
            return ()
        await self._recorder.record(loss.events)
        log.warning("attempt.lost", execution_id=state.execution_id, attempt=attempt, worker=worker)
        work = work_of(state)
        if loss.retry is not None and work is not None:  # a retry needs a request: see judge_loss
            await self._settler.schedule(
                Retry.scheduled(loss.retry, encode(work), work.target, _ms(state))
            )
        elif loss.poison:
            await self._park_poison(loss.after)
        return loss.events

    async def _park_poison(self, state: ExecutionState) -> None:
        """Every attempt lost its worker: likely poison. Park its work for a person to see."""
        reason = f"poison: all {len(state.attempts)} attempts lost their worker"
        work = work_of(state)
        if work is None:
            self.report(state, NO_REQUEST)
            return
        await self._settler.park(encode(work), work.target, reason, "supervisor")
        log.error("execution.poison", execution_id=state.execution_id, reason=reason)

    async def republish(self, state: ExecutionState) -> None:
        """A retry recorded as scheduled whose message never reached a queue. One the log
        cannot rebuild is reported and left: the supervisor offers each lost retry once."""
        work = work_of(state)
        if work is None or state.next_due_at is None:
            self.report(state, NO_REQUEST if work is None else "its retry has no due time")
            return
        log.warning(
            "retry.republished", execution_id=state.execution_id, attempt=state.next_attempt
        )
        retry = Retry(
            encode(work), work.target, state.next_attempt, 0.0, state.next_due_at, _ms(state)
        )
        await self._settler.schedule(retry)

    def report(self, state: ExecutionState, reason: str) -> None:
        """What the log does not let the supervisor recover: said once, counted, and left
        as it is for a person (``ricochet status`` shows it); nothing is recorded for it."""
        self.unrecoverable += 1
        log.warning(
            "execution.unrecoverable",
            execution_id=state.execution_id,
            status=state.status.value,
            next_attempt=state.next_attempt,
            reason=reason,
        )

    async def redispatch(self, state: ExecutionState) -> tuple[Event, ...]:
        """A request whose work never reached a worker (its requester died between the
        two): publish its first attempt now. A copy, if the first did arrive after all,
        steps back at its start claim. A target nobody serves ends the execution."""
        work = work_of(state)
        if work is None:
            self.report(state, NO_REQUEST)
            return ()
        log.warning("execution.redispatched", execution_id=state.execution_id)
        first = Retry(encode(work), work.target, 1, 0.0, self._clock(), _ms(state))
        try:
            await self._settler.schedule(first)
        except PublishError:
            error = ErrorInfo(
                type="UnknownTarget", message=f"no worker queue serves {work.target!r}"
            )
            decision, _ = run(RejectExecution(error, self._clock()), state)
            if isinstance(decision, Rejected):
                return ()
            await self._recorder.record(decision)
            return decision
        return ()

    async def abandon(
        self,
        message: AbstractIncomingMessage,
        state_of: Callable[[str], ExecutionState | None],
    ) -> tuple[Event, ...]:
        """A dead-lettered work message: its execution cannot go on, so it ends failed."""
        execution_id = _execution_of(message)
        if execution_id is None:
            return ()
        state = state_of(execution_id)
        if state is None or state.status not in (Status.PENDING, Status.RETRY_SCHEDULED):
            return ()
        reason = str((message.headers or {}).get(REASON_HEADER) or _broker_reason(message))
        error = ErrorInfo(type="DeadLettered", message=reason)
        decision, _ = run(RejectExecution(error, self._clock()), state)
        if isinstance(decision, Rejected):
            return ()
        await self._recorder.record(decision)
        log.warning("execution.dead_lettered", execution_id=execution_id, reason=reason)
        return decision


def _execution_of(message: AbstractIncomingMessage) -> str | None:
    """The execution of a dead-lettered work message; for a body Ricochet cut when
    parking it, from the header ``Settler.park`` set (and let no sender set)."""
    try:
        return decode(WorkMessage, message.body).execution_id
    except DecodeError:
        pass
    headers = message.headers or {}
    found = headers.get(EXECUTION_HEADER) if ORIGINAL_SHA256_HEADER in headers else None
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    return found if isinstance(found, str) and found else None


def _ms(state: ExecutionState) -> int | None:
    return None if state.requested_at is None else round(state.requested_at.timestamp() * 1000)


def _broker_reason(message: AbstractIncomingMessage) -> str:
    """The broker's own reason (``x-first-death-reason``: delivery_limit, rejected...)."""
    headers = message.headers or {}
    why = headers.get("x-first-death-reason", "unknown")
    queue = headers.get("x-first-death-queue", "?")
    return f"dead-lettered by the broker from {queue!s}: {why!s}"
