"""The trigger intake: turns JSON triggers from other services into executions.

It runs inside the active supervisor, which follows the log (from its latest
checkpoint): that is where it learns the idempotency keys used inside the
de-duplication window (across restarts), and the single active consumer on the
triggers queue means one intake decides at a time, so the same key can never
start two executions inside the window, however duplicates race.
A trigger with no key but a message id is de-duplicated by that id in the same
way (``engine.keys``): a trigger redelivered after a hand-over, or after a crash
between its request and its ack, is matched to the execution it started.
A duplicate whose execution never started and whose work this intake did not see
confirmed gets its work published again at once (copies step back at the start
claim, SPEC 7.8): the requester may have been cut off between the two steps.
On stop, the intake stops consuming, lets the triggers in hand finish and sends
their acks (and dead letters) before it lets the queue go.
Bad input is dead-lettered with the reason and logged; nothing stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from ricochet.contracts import Event, ReplyRequested, TriggerV1, decode, encode
from ricochet.contracts.limits import DEFAULT_LIMITS, Limits
from ricochet.engine import ExecutionState, RequestExecution, Status
from ricochet.engine.keys import (
    TRIGGER_SOURCE,
    KeyVerdict,
    judge_key,
    key_digest,
    trigger_digest,
)
from ricochet.engine.recent import Recent
from ricochet.engine.replies import reply_requested
from ricochet.engine.watch import Watch
from ricochet.errors import DecodeError, DispatchInterrupted, InvalidTrigger
from ricochet.workers.amqp.broker import TRANSIENT
from ricochet.workers.amqp.declaring import ensure_queue
from ricochet.workers.amqp.topology import QueueSpec
from ricochet.workers.client.dispatch import Dispatcher, rejected
from ricochet.workers.clock import Clock
from ricochet.workers.delivery.disposition import Ack, DeadLetter
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.logs import get_logger
from ricochet.workers.observe.tracing import traceparent_of

log = get_logger(__name__)

STOP_S = 10.0
"""On stop, how long the triggers in hand get to finish (their starts are group commits
and confirmed publishes: milliseconds, unless the broker is away)."""
CONFIRMED_MEMORY = 10_000
"""Executions whose first work this intake saw confirmed, remembered so a duplicate of
one still queued behind a backlog publishes no copy."""

Resend = Callable[[ExecutionState], Awaitable[tuple[Event, ...]]]


def parse_trigger(message: AbstractIncomingMessage, limits: Limits = DEFAULT_LIMITS) -> TriggerV1:
    """Validate size, JSON, schema and routing key; raises ``InvalidTrigger`` with why.

    The body is parsed once, by the schema's parser; only a body it refuses is
    parsed again, to say whether it was JSON at all.
    """
    size, limit = len(message.body), limits.max_trigger_bytes
    if size > limit:
        raise InvalidTrigger(f"body of {size} bytes is over the {limit} byte limit")
    try:
        trigger = decode(TriggerV1, message.body)
    except DecodeError as err:
        try:
            orjson.loads(message.body)
        except orjson.JSONDecodeError as not_json:
            raise InvalidTrigger(f"body is not JSON: {not_json}") from err
        raise InvalidTrigger(f"body does not match trigger.v1: {err}") from err
    if message.routing_key != trigger.target:  # an empty key too: no way around the check
        raise InvalidTrigger(
            f"routing key {message.routing_key!r} is not the target {trigger.target!r}"
        )
    try:
        encode(trigger)
    except TypeError as err:
        raise InvalidTrigger(f"arguments cannot travel as JSON: {err}") from err
    return trigger


def _rejection(ended: Event, target: str) -> str:
    """Why dispatching ended the execution at once: most often, no queue serves the target."""
    error = getattr(ended, "error", None)
    if error is None or error.type == "UnknownTarget":
        return f"unknown target {target!r}: no worker queue serves it"
    return f"{target!r}: {error.message}"


class TriggerIntake:
    """Consumes the triggers queue for the active supervisor, many triggers at once.

    Triggers are handled concurrently (a real prefetch), but each key is decided
    in arrival order with no await between the check and the reservation: the
    first trigger of a key reserves it and starts the execution; copies that
    arrive meanwhile wait for that start to be confirmed on the log and are then
    acked as duplicates (or, if it failed, decide again). Starts are recorded
    through group commit like every other event.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        settler: Settler,
        watch: Watch,
        clock: Clock,
        worker: str,
        resend: Resend,
        note: Callable[[Event], None],
    ) -> None:
        self._worker = worker
        self._dispatcher = dispatcher
        self._limits = dispatcher.limits
        self._settler = settler
        self._watch = watch
        self._clock = clock
        self._resend = resend
        self._note = note
        self._deciding: dict[int, asyncio.Future[None]] = {}
        self._confirmed: Recent[str, None] = Recent(CONFIRMED_MEMORY)
        self._in_hand: set[asyncio.Task[Any]] = set()
        self._consumer: tuple[AbstractChannel, AbstractQueue, str] | None = None
        self._stopping = False
        self.counts: Counter[str] = Counter()
        """Triggers by result (started, duplicate, dead_lettered, resent): for the metrics."""

    def knows(self, key: str) -> bool:
        """Is ``key`` inside the de-duplication window (it started an execution)?"""
        return key_digest(key) in self._watch.keys

    async def consume(
        self, connection: AbstractRobustConnection, spec: QueueSpec, prefetch: int
    ) -> None:
        """Start taking triggers from ``spec``'s queue (once; never after ``stop``)."""
        if self._consumer is not None or self._stopping:
            return
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await ensure_queue(connection, channel, spec)
        self._consumer = (channel, queue, await queue.consume(self._on_trigger))

    async def _on_trigger(self, message: AbstractIncomingMessage) -> None:
        """Triggers are acked in runs, like work: a trigger whose handling failed before it
        was settled goes back to the queue, so it cannot hold up the acks after it."""
        self._settler.track(message)
        task = asyncio.current_task()
        assert task is not None, "a consumer callback runs in a task"
        self._in_hand.add(task)
        try:
            await self.handle(message)
        except Exception:
            log.exception("trigger.handler_failed", routing_key=message.routing_key)
            with contextlib.suppress(Exception):
                await self._settler.requeue(message)
        finally:
            self._in_hand.discard(task)

    def release(self) -> Awaitable[object] | None:
        """Stop taking triggers at once (a stand-down: the lease may have moved): the
        consumer's channel is closed, and what it held goes back to the queue for the next
        active intake, which knows what this one started (``knows``, message ids). A later
        take-over calls ``consume`` again. The close's first step runs when awaited."""
        if self._consumer is None:
            return None
        channel, _, _ = self._consumer
        self._consumer = None
        return channel.close()

    async def stop(self, timeout_s: float = STOP_S) -> None:
        """Stop consuming, let the triggers in hand finish and settle, send their acks,
        then close: a trigger that started an execution (or was judged malformed) is never
        handed to the next intake to be started (or dead-lettered) again."""
        self._stopping = True
        if self._consumer is None:
            return
        channel, queue, tag = self._consumer
        self._consumer = None
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
        if self._in_hand:
            await asyncio.wait(set(self._in_hand), timeout=timeout_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._settler.flush_acks(), timeout_s)
        unfinished = len(self._in_hand)
        with contextlib.suppress(Exception):
            await channel.close()
        log.info("trigger.intake_stopped", unfinished=unfinished, counts=dict(self.counts))

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Start, match or park one trigger; broker trouble leaves it for redelivery."""
        try:
            await self._handle(message)
        except (*TRANSIENT, DispatchInterrupted):
            raise  # the trigger stays unacked: the next intake finds its key, or starts it
        except Exception as err:
            reason = f"could not be processed: {type(err).__name__}: {err}"
            log.exception("trigger.dead_lettered", reason=reason)
            self.counts["dead_lettered"] += 1
            await self._settler.settle(message, DeadLetter(reason))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            trigger = parse_trigger(message, self._limits)
        except InvalidTrigger as err:
            log.warning("trigger.dead_lettered", reason=str(err), routing_key=message.routing_key)
            self.counts["dead_lettered"] += 1
            await self._settler.settle(message, DeadLetter(str(err)))
            return
        digest = trigger_digest(trigger.idempotency_key, trigger.target, message.message_id)
        if digest is None:  # no key, no message id: every publish starts one
            await self._start(message, trigger, uuid.uuid4().hex)
            return
        while True:
            deciding = self._deciding.get(digest)
            keyed = trigger.idempotency_key is not None
            verdict = judge_key(self._watch.used(digest, keyed=keyed), deciding is not None)
            if verdict is KeyVerdict.DUPLICATE:
                break
            if verdict is KeyVerdict.START:
                await self._start_keyed(message, trigger, digest)
                return
            assert deciding is not None
            await asyncio.shield(deciding)
        await self._duplicate(message, trigger, f"{digest:032x}")

    async def _duplicate(
        self, message: AbstractIncomingMessage, trigger: TriggerV1, execution_id: str
    ) -> None:
        """Ack a trigger whose key (or message id) started ``execution_id``, once its work
        is known to have gone out, with the reply it asks for."""
        log.info(
            "trigger.duplicate",
            idempotency_key=trigger.idempotency_key,
            message_id=None if trigger.idempotency_key else message.message_id,
            execution_id=execution_id,
            redelivered=message.redelivered,
        )
        self.counts["duplicate"] += 1
        reply = self._reply_request(message, execution_id)
        if reply:  # the reply of the execution it matched, ended or not
            await self._dispatcher.record(reply)
        await self._work_went_out(execution_id)
        await self._settler.settle(message, Ack())

    async def _work_went_out(self, execution_id: str) -> None:
        """Publish the first attempt's work again if its execution never started and no
        publish of it was seen confirmed here: its requester may have been cut off between
        recording the request and publishing the work (a closed connection, a crash)."""
        if execution_id in self._confirmed:
            return
        live = self._watch.live.get(execution_id)
        if live is None or live.ever_started:
            return
        state = self._watch.state_of(execution_id)
        if state is None or state.status is not Status.PENDING:
            return
        log.info("trigger.work_resent", execution_id=execution_id)
        for event in await self._resend(state):
            self._note(event)
        self._watch.recovered.add((execution_id, 1))
        self._confirmed.add(execution_id, None)
        self.counts["resent"] += 1

    def _reply_request(
        self, message: AbstractIncomingMessage, execution_id: str
    ) -> tuple[ReplyRequested, ...]:
        """The trigger's ``reply_to`` (with its ``correlation_id``) as a fact for the log."""
        if not message.reply_to:
            return ()
        request = reply_requested(
            execution_id, message.reply_to, message.correlation_id, self._clock(), self._worker
        )
        return (request,)

    async def _start_keyed(
        self, message: AbstractIncomingMessage, trigger: TriggerV1, digest: int
    ) -> None:
        """Reserve the key while its start is recorded; copies wait on the reservation."""
        reservation = asyncio.get_running_loop().create_future()
        self._deciding[digest] = reservation
        try:
            await self._start(message, trigger, f"{digest:032x}", digest)
        finally:
            del self._deciding[digest]
            reservation.set_result(None)

    async def _start(
        self,
        message: AbstractIncomingMessage,
        trigger: TriggerV1,
        execution_id: str,
        digest: int | None = None,
    ) -> None:
        request = RequestExecution(
            execution_id,
            trigger.target,
            self._clock(),
            trigger.args,
            dict(trigger.kwargs),
            idempotency_key=trigger.idempotency_key,
            source=TRIGGER_SOURCE,
        )
        events = await self._dispatcher.start(
            request,
            self._reply_request(message, execution_id),
            trace=traceparent_of(message.headers),
        )
        self._confirmed.add(execution_id, None)
        if digest is not None:  # its request is on the log now: the key is used
            if trigger.idempotency_key is None:
                self._watch.message_ids.add(digest, None)
            else:
                self._watch.keys.add(digest, self._clock().timestamp())
        if rejected(events):
            reason = _rejection(events[-1], trigger.target)
            log.warning("trigger.dead_lettered", reason=reason, execution_id=execution_id)
            self.counts["dead_lettered"] += 1
            await self._settler.settle(message, DeadLetter(reason))
            return
        log.debug(  # debug: at thousands a second, the execution's own lines say enough
            "trigger.started", execution_id=execution_id, target=trigger.target
        )
        self.counts["started"] += 1
        await self._settler.settle(message, Ack())
