"""The trigger intake: turns JSON triggers from other services into executions.

It runs inside the active supervisor, which follows the log (from its latest
checkpoint): that is where it learns the idempotency keys used inside the
de-duplication window (across restarts), and the single active consumer on the
triggers queue means one intake decides at a time, so the same key can never
start two executions inside the window, however duplicates race.
Bad input is dead-lettered with the reason and logged; nothing stops.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import Event, ReplyRequested, TriggerV1, decode, encode
from ricochet.contracts.limits import DEFAULT_LIMITS, Limits
from ricochet.engine import RequestExecution
from ricochet.engine.keys import KeyVerdict, judge_key, key_digest
from ricochet.engine.replies import reply_requested
from ricochet.engine.watch import Watch
from ricochet.errors import DecodeError, DispatchInterrupted, InvalidTrigger
from ricochet.workers.amqp.broker import TRANSIENT
from ricochet.workers.client.dispatch import Dispatcher, execution_id_for, rejected
from ricochet.workers.clock import Clock
from ricochet.workers.delivery.disposition import Ack, DeadLetter
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.logs import get_logger
from ricochet.workers.observe.tracing import traceparent_of

log = get_logger(__name__)


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
        self, dispatcher: Dispatcher, settler: Settler, watch: Watch, clock: Clock, worker: str
    ) -> None:
        self._worker = worker
        self._dispatcher = dispatcher
        self._limits = dispatcher.limits
        self._settler = settler
        self._watch = watch
        self._clock = clock
        self._deciding: dict[int, asyncio.Future[None]] = {}
        self.counts: Counter[str] = Counter()
        """Triggers by result (started, duplicate, dead_lettered): for the metrics."""

    def knows(self, key: str) -> bool:
        """Is ``key`` inside the de-duplication window (it started an execution)?"""
        return key_digest(key) in self._watch.keys

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
        key = trigger.idempotency_key
        if key is None:
            await self._start(message, trigger)
            return
        digest = key_digest(key)
        while True:
            deciding = self._deciding.get(digest)
            verdict = judge_key(digest in self._watch.keys, deciding is not None)
            if verdict is KeyVerdict.DUPLICATE:
                break
            if verdict is KeyVerdict.START:
                await self._start_keyed(message, trigger, digest)
                return
            assert deciding is not None
            await asyncio.shield(deciding)
        execution_id = execution_id_for(key)
        log.info("trigger.duplicate", idempotency_key=key, execution_id=execution_id)
        self.counts["duplicate"] += 1
        reply = self._reply_request(message, execution_id)
        if reply:  # the reply of the execution it matched, ended or not
            await self._dispatcher.record(reply)
        await self._settler.settle(message, Ack())

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
            await self._start(message, trigger, digest)
        finally:
            del self._deciding[digest]
            reservation.set_result(None)

    async def _start(
        self, message: AbstractIncomingMessage, trigger: TriggerV1, digest: int | None = None
    ) -> None:
        execution_id = execution_id_for(trigger.idempotency_key)
        request = RequestExecution(
            execution_id,
            trigger.target,
            self._clock(),
            trigger.args,
            dict(trigger.kwargs),
            idempotency_key=trigger.idempotency_key,
            source="trigger",
        )
        events = await self._dispatcher.start(
            request,
            self._reply_request(message, execution_id),
            trace=traceparent_of(message.headers),
        )
        if digest is not None:  # its request is on the log now: the key is used
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
