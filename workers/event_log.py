"""Recording events: one confirmed stream message per group of events recorded together.

The events that describe a step (``AttemptFailed`` + ``RetryScheduled``, say) go
in one message, so they are confirmed together and never half-recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from contracts import Event, encode_batch
from workers.broker import persistent_message, publish, publish_until_confirmed
from workers.topology import Names

BATCH_TYPE = "ricochet.events"


class EventRecorder:
    """Publishes events to the log's exchange and returns once the broker confirmed them."""

    def __init__(self, exchange: AbstractExchange) -> None:
        self._exchange = exchange

    @classmethod
    async def open(cls, channel: AbstractChannel, names: Names) -> EventRecorder:
        return cls(await channel.get_exchange(names.events, ensure=False))

    async def record(self, events: Sequence[Event]) -> None:
        """Record facts that must not be lost: retries through broker trouble until confirmed."""
        if events:
            await publish_until_confirmed(self._exchange, self._message(events), routing_key="")

    async def record_once(self, events: Sequence[Event], message_id: str) -> None:
        """One try: for a claim (``AttemptStarted``) that must not be made twice.

        ``message_id`` is unique to this claim, so after a lost confirm the log
        can tell whether this publish (and not another worker's) got through.
        """
        message = self._message(events)
        message.message_id = message_id
        await publish(self._exchange, message, routing_key="")

    @staticmethod
    def _message(events: Sequence[Event]) -> aio_pika.Message:
        return persistent_message(encode_batch(list(events)), type_=BATCH_TYPE)
