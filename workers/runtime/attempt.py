"""One delivery of a work message, from parsing to the recorded outcome.

The order is what makes the guarantees (SPEC sections 3 and 5):

1. a message that cannot be read (too large, not the schema, a value outside the
   shared limits of ``contracts.limits``), or names an unknown target, is
   dead-lettered;
2. ``AttemptStarted`` is recorded and confirmed, and only then the work message
   is acked, so a long run never meets ``consumer_timeout``; the body runs only
   if that start is the first of its attempt in log order (``ricochet.workers.runtime.claims``):
   a second copy of a work message, however it came, never runs its attempt
   again;
3. the function runs; its outcome (``AttemptSucceeded`` + ``ExecutionSucceeded``,
   or ``AttemptFailed`` + ``RetryScheduled`` / ``ExecutionFailed``) is recorded; a
   result outside the limits is never recorded: the attempt fails with cause
   ``result_too_large`` or ``result_not_readable`` and follows its policy;
4. a retry message is published only after the events that schedule it are confirmed,
   and not at all when the next attempt is claimed already (a cancel that won: the
   attempt's failure then ends the execution cancelled, ``engine.cancel``).

A start or outcome the broker confirmed is then looked for on the log
(``workers.log.witness``): one the log lost (RabbitMQ 3.10 can, when a stream's
leader node stops) is published again, and the attempt is vouched for in
heartbeats until its outcome is seen, so a lost write neither leaves an attempt
unrun nor makes a live one look lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import (
    DEFAULT_LIMITS,
    Event,
    Limits,
)
from ricochet.engine import (
    Command,
    ExecutionState,
    RecordFailure,
    RecordSuccess,
    Rejected,
    StartAttempt,
    awaiting_attempt,
    run,
)
from ricochet.engine.cancel import with_cancel_from
from ricochet.engine.claims import Copy
from ricochet.engine.recovery import scheduled_retry
from ricochet.errors import BadMessage, LimitExceeded
from ricochet.workers.amqp.broker import TRANSIENT
from ricochet.workers.clock import Clock
from ricochet.workers.delivery.acks import still_held
from ricochet.workers.delivery.disposition import Ack, DeadLetter, Requeue, Retry
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.log.witness import Sighting
from ricochet.workers.logs import get_logger
from ricochet.workers.observe.metrics import AttemptMetrics
from ricochet.workers.observe.tracing import attempt_span, traceparent_of
from ricochet.workers.runtime.children import ChildService
from ricochet.workers.runtime.claims import ClaimBook
from ricochet.workers.runtime.context import AttemptContext
from ricochet.workers.runtime.heartbeat import RunningAttempts
from ricochet.workers.runtime.incoming import Delivery, parse
from ricochet.workers.runtime.outcomes import ended_fields, interrupted, unrecordable
from ricochet.workers.runtime.own_writes import OwnWrites, attempt_of
from ricochet.workers.runtime.runner import Raised, Returned, invoke
from ricochet.workers.runtime.tasks import Task

log = get_logger(__name__)

CLAIM_VERDICT_S = 60.0
"""How long a try waits to see its own start on the log before giving up running."""
START_VERIFY_S = 300.0
"""How long a worker keeps trying to learn whether an unconfirmed start reached the log."""
NOT_OPEN = (
    "no open attempt on the event log for this work message: its execution was never "
    "requested, or has ended, or this attempt was never scheduled"
)


@dataclass(slots=True)
class AttemptProcessor:
    """Processes deliveries for the tasks this worker serves."""

    tasks: Mapping[str, Task[..., Any]]
    recorder: EventRecorder
    settler: Settler
    pool: Executor
    worker_id: str
    clock: Clock
    running: RunningAttempts
    claims: ClaimBook
    accepting: Callable[[], bool]
    children: ChildService | None = None
    limits: Limits = DEFAULT_LIMITS
    metrics: AttemptMetrics | None = None
    writes: OwnWrites = field(init=False)
    """What this worker recorded, until the log shows it (``runtime.own_writes``)."""

    def __post_init__(self) -> None:
        self.writes = OwnWrites(self.recorder, self.claims.witness, self.running)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Process one delivery end to end; bad input is dead-lettered, never raised."""
        if not self.accepting():
            await self.settler.settle(message, Requeue())
            return
        try:
            delivery = parse(message, self.limits)
        except BadMessage as err:
            await self._reject(message, str(err))
            return
        task = self.tasks.get(delivery.work.target)
        if task is None:
            await self._reject(message, f"unknown target {delivery.work.target!r}")
            return
        if await self._already_started(message, delivery):
            return
        await self._attempt(message, delivery, task)

    async def _reject(self, message: AbstractIncomingMessage, reason: str) -> None:
        log.warning("work.dead_lettered", reason=reason, routing_key=message.routing_key)
        await self.settler.settle(message, DeadLetter(reason))

    async def _already_started(self, message: AbstractIncomingMessage, delivery: Delivery) -> bool:
        """Settle a delivery whose attempt may not be tried: claimed already (started, or
        cancelled), or not open on the log at all (never requested, or ended). The book
        decides from the log alone (``runtime.claims``); nothing in the message counts."""
        work, number = delivery.work, delivery.attempt
        verdict = await self.claims.judge(work.execution_id, number, delivery.arrived)
        if verdict is Copy.TRY:
            return False
        bound = log.bind(execution_id=work.execution_id, attempt=number)
        if verdict is None:
            bound.warning("work.log_unread")  # the log could not be read to its end in time
            await self._settle_held(message, Requeue())
        elif verdict is Copy.NOT_OPEN:
            await self._reject(message, NOT_OPEN)
        else:  # a redelivery of a claimed attempt, a copy a cancel pre-empted or ended
            bound.warning("work.claimed_already")
            await self.settler.settle(message, Ack())
        return True

    async def _attempt(
        self, message: AbstractIncomingMessage, delivery: Delivery, task: Task[..., Any]
    ) -> None:
        work, number = delivery.work, delivery.attempt
        bound = log.bind(execution_id=work.execution_id, attempt=number, target=work.target)
        key = (work.execution_id, number)
        self.running.add(key)
        try:
            running = await self._claim(message, delivery, task)
            if running is None:
                return
            context = AttemptContext(work.execution_id, number, work.target, self.worker_id)
            if self.children is not None:
                context = self.children.scope(context, delivery.requested_at_ms)
            with attempt_span(message.headers, work, number, delivery.due_at) as span:
                began = time.monotonic()
                try:
                    ran = await invoke(
                        task, work.args, work.kwargs, context, self.pool, self.limits
                    )
                except asyncio.CancelledError:
                    if self.accepting():
                        raise
                    bound.warning("attempt.interrupted_by_shutdown")
                    await self._finish(
                        interrupted(), running, delivery, message.body, message.headers
                    )
                    raise
                if self.metrics is not None:
                    self.metrics.attempt_ran(work.target, time.monotonic() - began)
                span.ended(ran)
                recorded = await self._finish(ran, running, delivery, message.body, message.headers)
            bound.info("attempt.ended", **ended_fields(ran, recorded))
        finally:
            self.running.discard(key)

    async def _claim(
        self, message: AbstractIncomingMessage, delivery: Delivery, task: Task[..., Any]
    ) -> ExecutionState | None:
        """Record ``AttemptStarted`` (one try), then ack: from here the attempt is ours.

        A delivery whose channel has already closed is stale (the broker requeued
        it), so it is left alone. If the start cannot be confirmed, the body does
        not run: the message comes back. Once the start is confirmed the attempt
        is ours even if the ack is lost with the connection: the confirm travelled
        on that connection before its close, so the broker requeued the message
        after the start was on the log, and the next holder finds it there and
        drops its copy.
        """
        work, number = delivery.work, delivery.attempt
        if not still_held(message):
            log.info("work.stale_delivery", execution_id=work.execution_id, attempt=number)
            return None
        now = self.clock()
        state = awaiting_attempt(work.execution_id, work.target, number)
        claim = uuid.uuid4().hex
        command = StartAttempt(number, self.worker_id, task.spec.policy, now, claim)
        decision, running = run(command, state)
        if isinstance(decision, Rejected):
            await self._reject(message, decision.reason)
            return None
        landed, sighting = await self._record_start(message, delivery, decision, claim)
        if not landed or not await self._won(delivery, decision, claim, sighting):
            return None
        lateness = None if delivery.due_at is None else now.timestamp() - delivery.due_at
        if self.metrics is not None:
            self.metrics.attempt_started(work.target, lateness)
        log.debug(  # debug: at thousands a second, one info line per attempt (its end) is plenty
            "attempt.started", execution_id=work.execution_id, attempt=number, lateness_s=lateness
        )
        return running

    async def _record_start(
        self,
        message: AbstractIncomingMessage,
        delivery: Delivery,
        start: tuple[Event, ...],
        claim: str,
    ) -> tuple[bool, Sighting | None]:
        """Publish the start (one try) and settle the delivery: whether the start is on
        the log (or its confirm was lost and the log shows it), and its sighting."""
        self.claims.expect(claim, delivery.work.execution_id, delivery.attempt)
        try:
            sighting = await self.recorder.record_once(start, claim)
        except TRANSIENT as err:
            landed = await self._start_landed(message, delivery, claim, err)
            await self._settle_held(message, Ack() if landed else Requeue())
            if not landed:
                self.claims.forget(claim)
            return landed, None
        try:
            await self.settler.settle(message, Ack())
        except TRANSIENT as err:
            log.warning("work.ack_lost", execution_id=delivery.work.execution_id, error=repr(err))
        return True, sighting

    async def _settle_held(self, message: AbstractIncomingMessage, outcome: Ack | Requeue) -> None:
        """Settle a delivery whose start went unconfirmed, if its channel still holds it.

        A reconnect restores channels one by one, so a delivery can arrive on a
        restored channel while the publishing one is not back yet. Left unsettled
        there, it would never be redelivered and would hold up every later ack of
        its channel (acks go in runs) until prefetch ran out and the worker stalled.
        """
        if still_held(message):
            try:
                await self.settler.settle(message, outcome)
            except TRANSIENT as err:  # its channel closed after all: the broker requeued it
                log.info("work.settle_lost", error=repr(err))

    async def _won(
        self,
        delivery: Delivery,
        start: tuple[Event, ...],
        claim: str,
        sighting: Sighting | None,
    ) -> bool:
        """Is this try's start the first of its attempt on the log? If another came first,
        this copy steps back; if the log does not show it in time, the body does not run
        either (the attempt then ends as lost and follows its policy). A start the log
        lost is claimed again under the same claim."""
        deadline = time.monotonic() + CLAIM_VERDICT_S
        about = attempt_of(delivery.work.execution_id, delivery.attempt)
        await self.writes.until_seen(about, start, sighting, CLAIM_VERDICT_S, claim)
        won = await self.claims.won(claim, max(0.0, deadline - time.monotonic()))
        if won is True:
            return True
        work = delivery.work
        log.warning(
            "work.duplicate_stepped_back" if won is False else "attempt.claim_unseen",
            execution_id=work.execution_id,
            attempt=delivery.attempt,
        )
        return False

    async def _start_landed(
        self,
        message: AbstractIncomingMessage,
        delivery: Delivery,
        claim: str,
        err: BaseException,
    ) -> bool:
        """The start's confirm was lost with the connection: did *this* claim reach the log?

        After the reconnect, the log is settled: the broker either took the
        publish before the connection closed (and requeued the message after it),
        or dropped it. The next holder of the message reads the same log, so
        exactly one of us runs the body. This try's own claim is looked for, not
        the start's event id, which the next holder's start shares.
        """
        work = delivery.work
        log.warning("attempt.start_unconfirmed", execution_id=work.execution_id, error=repr(err))
        deadline = time.monotonic() + START_VERIFY_S
        while (remaining := deadline - time.monotonic()) > 0:
            if await self.claims.read_to_now(time.monotonic(), remaining):
                landed = self.claims.read(claim)
                log.warning(
                    "attempt.start_verified", execution_id=work.execution_id, on_the_log=landed
                )
                return landed
            await asyncio.sleep(0.5)
        return False

    async def _finish(
        self,
        ran: Returned | Raised,
        state: ExecutionState,
        delivery: Delivery,
        body: bytes,
        headers: Mapping[str, Any] | None = None,
    ) -> tuple[Event, ...]:
        """Record the outcome (retrying through broker trouble), then publish any retry;
        the events recorded. The attempt is vouched for until the log shows them.

        A next attempt claimed already can only be a cancel's claim (or a start of a copy
        after this attempt was declared lost): no retry is recorded or published then.
        """
        number, target = delivery.attempt, delivery.work.target
        if self.claims.claimed(state.execution_id, number + 1):
            state = with_cancel_from(state, number + 1)
        decision = self._decide(ran, state, number)
        try:
            sighting = await self.recorder.record(decision)
        except LimitExceeded as err:  # the runner checks results: this is the last line
            if not isinstance(ran, Returned):
                raise
            log.warning("attempt.outcome_refused", execution_id=state.execution_id, error=str(err))
            decision = self._decide(unrecordable(err), state, number)
            sighting = await self.recorder.record(decision)
        if self.metrics is not None:
            self.metrics.outcome_recorded(target, decision)
        scheduled = scheduled_retry(decision)
        retry = None
        if scheduled is not None:
            retry = Retry.scheduled(
                scheduled, body, target, delivery.requested_at_ms, traceparent_of(headers)
            )
        if retry is not None:
            await self.settler.settle(None, retry)
        await self.writes.then((delivery.work.execution_id, delivery.attempt), decision, sighting)
        return decision

    def _decide(
        self, ran: Returned | Raised, state: ExecutionState, number: int
    ) -> tuple[Event, ...]:
        now = self.clock()
        command: Command
        if isinstance(ran, Returned):
            command = RecordSuccess(number, ran.result, now, self.worker_id)
        else:
            command = RecordFailure(
                number, ran.cause, ran.error, now, self.worker_id, retryable=ran.retryable
            )
        decision, _ = run(command, state)
        if isinstance(decision, Rejected):
            raise AssertionError(f"the decider refused its own attempt: {decision.reason}")
        return decision
