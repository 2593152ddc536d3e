"""The one place that turns an outcome into broker calls: ack, retry, dead-letter.

Nothing else in Ricochet acks, rejects or re-publishes work.
"""

from __future__ import annotations

import time
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DUE_AT_HEADER,
    REASON_HEADER,
    REQUESTED_AT_HEADER,
    SOURCE_QUEUE_HEADER,
)
from ricochet.workers.amqp.broker import persistent_message, publish_until_confirmed
from ricochet.workers.amqp.topology import (
    DELAY_HEADER,
    DELAY_REDECLARE_S,
    Names,
    declare_queue,
    delay_queue,
)
from ricochet.workers.clock import Clock, utc_now
from ricochet.workers.delivery.acks import RunAcker
from ricochet.workers.delivery.disposition import Ack, DeadLetter, Outcome, Requeue, Retry
from ricochet.workers.observe.tracing import TRACE_HEADER


class Settler:
    """Publishes retries and dead letters on a confirming channel, then acks."""

    def __init__(
        self,
        channel: AbstractChannel,
        names: Names,
        clock: Clock = utc_now,
        acks: RunAcker | None = None,
        delay_group_size: int | None = None,
    ) -> None:
        self._channel = channel
        self._delay_group_size = delay_group_size
        self._names = names
        self._clock = clock
        self._acks = acks
        self._declared_at: dict[int, float] = {}
        self._work: AbstractExchange | None = None
        self._delay: AbstractExchange | None = None
        self._dead: AbstractExchange | None = None

    async def open(self) -> Settler:
        self._work = await self._channel.get_exchange(self._names.work, ensure=False)
        self._delay = await self._channel.get_exchange(self._names.delay, ensure=False)
        self._dead = await self._channel.get_exchange(self._names.dead, ensure=False)
        return self

    async def settle(self, message: AbstractIncomingMessage | None, outcome: Outcome) -> None:
        """Carry out ``outcome``; ack ``message`` (if still held) only once that is confirmed."""
        match outcome:
            case Ack():
                pass
            case Retry():
                await self.schedule(outcome)
            case DeadLetter():
                assert message is not None, "only a held message can be dead-lettered"
                await self.dead_letter(message, outcome.reason)
            case Requeue():
                assert message is not None, "only a held message can be requeued"
                await self.requeue(message)
                return
        if message is not None:
            await self._ack(message)

    def track(self, message: AbstractIncomingMessage) -> None:
        """Ack ``message`` in runs, like work deliveries (call in its consumer callback,
        before any await, so deliveries are noted in tag order)."""
        if self._acks is not None:
            self._acks.delivered(message)

    async def _ack(self, message: AbstractIncomingMessage) -> None:
        """Work deliveries are acked in runs (``workers.delivery.acks``); anything else at once."""
        if self._acks is not None and self._acks.tracks(message):
            self._acks.ack(message)
        else:
            await message.ack()

    async def requeue(self, message: AbstractIncomingMessage) -> None:
        """Give ``message`` back to its queue, untouched."""
        await message.nack(requeue=True)
        if self._acks is not None:
            self._acks.drop(message)

    async def schedule(self, retry: Retry) -> None:
        """Straight to the work exchange when due, else into the delay queue for its delay.

        The TTL is the time left until the due time now, so the time spent
        before publishing is not added to the delay.
        """
        assert self._work is not None, "call open() first"
        assert self._delay is not None, "call open() first"
        due_ms = round(retry.due_at.timestamp() * 1000)
        headers: dict[str, Any] = {ATTEMPT_HEADER: retry.attempt, DUE_AT_HEADER: due_ms}
        if retry.requested_at_ms is not None:
            headers[REQUESTED_AT_HEADER] = retry.requested_at_ms
        if retry.traceparent is not None:
            headers[TRACE_HEADER] = retry.traceparent
        if retry.delay_s > 0:
            await self._ensure_delay_queue(round(retry.delay_s * 1000))
        remaining = (retry.due_at - self._clock()).total_seconds()  # after the declare's round trip
        if retry.delay_s <= 0 or remaining <= 0.001:
            message = persistent_message(retry.body, headers=headers)
            await publish_until_confirmed(self._work, message, retry.target)
            return
        headers[DELAY_HEADER] = round(retry.delay_s * 1000)
        message = persistent_message(retry.body, headers=headers, expiration_s=remaining)
        await publish_until_confirmed(self._delay, message, retry.target)

    async def _ensure_delay_queue(self, delay_ms: int) -> None:
        """Declare (and so keep alive) the delay queue at least every few minutes."""
        last = self._declared_at.get(delay_ms)
        now = time.monotonic()
        if last is None or now - last > DELAY_REDECLARE_S:
            spec = delay_queue(self._names, delay_ms, self._delay_group_size)
            await declare_queue(self._channel, spec)
            self._declared_at[delay_ms] = now

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Copy the message to the dead-letter exchange with why, keeping its body intact."""
        headers: dict[str, Any] = {
            k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")
        }
        source = f"{message.exchange or '(default)'}/{message.routing_key}"
        await self.park(message.body, message.routing_key or "", reason, source, headers)

    async def park(
        self,
        body: bytes,
        routing_key: str,
        reason: str,
        source: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish ``body`` to the dead-letter queue with the reason in its headers."""
        assert self._dead is not None, "call open() first"
        parked = {**(headers or {}), REASON_HEADER: reason[:1000], SOURCE_QUEUE_HEADER: source}
        message = persistent_message(body, headers=parked)
        await publish_until_confirmed(self._dead, message, routing_key)
