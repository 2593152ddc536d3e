"""Recording events: one confirmed stream message per group of events recorded together.

The events that describe a step (``AttemptFailed`` + ``RetryScheduled``, say) go
in one message, so they are confirmed together and never half-recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractChannel, AbstractExchange

from contracts import Event, encode_batch
from workers.broker import persistent_message, publish
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
        if not events:
            return
        message = persistent_message(encode_batch(list(events)), type_=BATCH_TYPE)
        await publish(self._exchange, message, routing_key="")
