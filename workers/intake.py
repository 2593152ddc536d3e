"""The trigger intake: turns JSON triggers from other services into executions.

It runs inside the active supervisor, which already replays the log: that is
where it learns every idempotency key ever used (across restarts), and the
single active consumer on the triggers queue means one intake decides at a
time, so the same key can never start two executions, however duplicates race.
Bad input is dead-lettered with the reason and logged; nothing stops.
"""

from __future__ import annotations

import uuid

import orjson
from aio_pika.abc import AbstractIncomingMessage

from contracts import (
    MAX_TRIGGER_BYTES,
    DecodeError,
    ExecutionRequested,
    TriggerV1,
    decode,
    encode,
)
from workers.broker import TRANSIENT
from workers.dispatch import Dispatcher, Request, rejected
from workers.logs import get_logger
from workers.outcome import Ack, DeadLetter
from workers.settle import Settler

log = get_logger(__name__)

IDEMPOTENCY_NAMESPACE = uuid.UUID("7c1b3c5e-2f44-4a8f-9a53-4f0b1d1e6a20")


class InvalidTrigger(ValueError):
    """A trigger that can never start anything: dead-letter it with this reason."""


def execution_id_for(key: str | None) -> str:
    """Deterministic for an idempotency key (a second line of defence), random otherwise."""
    if key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, key).hex


def parse_trigger(message: AbstractIncomingMessage) -> TriggerV1:
    """Validate size, JSON, schema and routing key; raises ``InvalidTrigger`` with why."""
    size = len(message.body)
    if size > MAX_TRIGGER_BYTES:
        raise InvalidTrigger(f"body of {size} bytes is over the {MAX_TRIGGER_BYTES} byte limit")
    try:
        orjson.loads(message.body)
    except orjson.JSONDecodeError as err:
        raise InvalidTrigger(f"body is not JSON: {err}") from err
    try:
        trigger = decode(TriggerV1, message.body)
    except DecodeError as err:
        raise InvalidTrigger(f"body does not match trigger.v1: {err}") from err
    if message.routing_key and message.routing_key != trigger.target:
        raise InvalidTrigger(
            f"routing key {message.routing_key!r} is not the target {trigger.target!r}"
        )
    try:
        encode(trigger)
    except TypeError as err:
        raise InvalidTrigger(f"arguments cannot travel as JSON: {err}") from err
    return trigger


class TriggerIntake:
    """Consumes the triggers queue for the active supervisor."""

    def __init__(self, dispatcher: Dispatcher, settler: Settler) -> None:
        self._dispatcher = dispatcher
        self._settler = settler
        self.keys: dict[str, str] = {}

    def note(self, event: ExecutionRequested) -> None:
        """Every request with a key, from the log (a submit may carry one too)."""
        if event.idempotency_key is not None:
            self.keys.setdefault(event.idempotency_key, event.execution_id)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Start, match or park one trigger; broker trouble leaves it for redelivery."""
        try:
            await self._handle(message)
        except TRANSIENT:
            raise
        except Exception as err:
            reason = f"could not be processed: {type(err).__name__}: {err}"
            log.exception("trigger.dead_lettered", reason=reason)
            await self._settler.settle(message, DeadLetter(reason))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            trigger = parse_trigger(message)
        except InvalidTrigger as err:
            log.warning("trigger.dead_lettered", reason=str(err), routing_key=message.routing_key)
            await self._settler.settle(message, DeadLetter(str(err)))
            return
        key = trigger.idempotency_key
        if key is not None and key in self.keys:
            log.info("trigger.duplicate", idempotency_key=key, execution_id=self.keys[key])
            await self._settler.settle(message, Ack())
            return
        await self._start(message, trigger)

    async def _start(self, message: AbstractIncomingMessage, trigger: TriggerV1) -> None:
        execution_id = execution_id_for(trigger.idempotency_key)
        if trigger.idempotency_key is not None:
            self.keys[trigger.idempotency_key] = execution_id
        request = Request(
            execution_id,
            trigger.target,
            trigger.args,
            trigger.kwargs,
            idempotency_key=trigger.idempotency_key,
            source="trigger",
        )
        if rejected(await self._dispatcher.start(request)):
            reason = f"unknown target {trigger.target!r}: no worker queue serves it"
            log.warning("trigger.dead_lettered", reason=reason, execution_id=execution_id)
            await self._settler.settle(message, DeadLetter(reason))
            return
        log.info("trigger.started", execution_id=execution_id, target=trigger.target)
        await self._settler.settle(message, Ack())
