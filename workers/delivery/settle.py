"""The one place that turns an outcome into broker calls: ack, retry, dead-letter.

Nothing else in Ricochet acks, rejects or re-publishes work.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DUE_AT_HEADER,
    EXECUTION_HEADER,
    ORIGINAL_BYTES_HEADER,
    ORIGINAL_SHA256_HEADER,
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
from ricochet.workers.delivery.acks import RunAcker, still_held
from ricochet.workers.delivery.disposition import Ack, DeadLetter, Outcome, Requeue, Retry
from ricochet.workers.logs import get_logger
from ricochet.workers.observe.tracing import TRACE_HEADER
from ricochet.workers.settings import DEFAULT_DEAD_LETTER_BODY_BYTES

log = get_logger(__name__)


class Settler:
    """Publishes retries and dead letters on a confirming channel, then acks."""

    def __init__(
        self,
        channel: AbstractChannel,
        names: Names,
        clock: Clock = utc_now,
        acks: RunAcker | None = None,
        delay_group_size: int | None = None,
        body_bytes: int = DEFAULT_DEAD_LETTER_BODY_BYTES,
    ) -> None:
        self._channel = channel
        self._body_bytes = body_bytes
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

    async def flush_acks(self) -> None:
        """Send every ack still waiting for its run, and wait for them (see ``RunAcker.flush``)."""
        if self._acks is not None:
            await self._acks.flush()

    async def _ack(self, message: AbstractIncomingMessage) -> None:
        """Work deliveries are acked in runs (``workers.delivery.acks``); anything else at once.
        A delivery whose channel closed is not acked: the broker requeued it, and its next
        holder finds on the log what this one did."""
        if not still_held(message):
            log.info("work.ack_lost", reason="its channel closed; the broker requeued it")
            return
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
        """Copy the message to the dead-letter exchange with why (its body cut if huge)."""
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
        """Publish ``body`` to the dead-letter queue with the reason in its headers; a body
        over ``body_bytes`` goes cut, with its size and hash (``cut_body``)."""
        assert self._dead is not None, "call open() first"
        kept = {k: v for k, v in (headers or {}).items() if k not in CUT_HEADERS}
        body, cut = cut_body(body, self._body_bytes)
        parked = {**kept, **cut, REASON_HEADER: reason[:1000], SOURCE_QUEUE_HEADER: source}
        message = persistent_message(body, headers=parked)
        await publish_until_confirmed(self._dead, message, routing_key)


CUT_HEADERS = frozenset({ORIGINAL_BYTES_HEADER, ORIGINAL_SHA256_HEADER, EXECUTION_HEADER})
"""Set only by ``cut_body``: a parked message never keeps copies from its sender."""

EXECUTION_ID_CHARS = 256


def cut_body(body: bytes, limit: int) -> tuple[bytes, dict[str, Any]]:
    """``body`` cut to its first ``limit`` bytes, and the headers that say so.

    The dead-letter queue is for people to look at; a message refused for being huge
    (or junk) need not be kept whole, once and again per copy. The original size and
    the SHA-256 of the whole body stay, to match it against the sender's copy; and a
    work body's execution id, which the supervisor reads to end that execution.
    """
    if len(body) <= limit:
        return body, {}
    headers: dict[str, Any] = {
        ORIGINAL_BYTES_HEADER: len(body),
        ORIGINAL_SHA256_HEADER: hashlib.sha256(body).hexdigest(),
    }
    execution_id = _execution_id(body)
    if execution_id is not None:
        headers[EXECUTION_HEADER] = execution_id
    return body[:limit], headers


def _execution_id(body: bytes) -> str | None:
    """The ``execution_id`` of a JSON object body, if it has a sensible one."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found = raw.get("execution_id") if isinstance(raw, dict) else None
    if isinstance(found, str) and 0 < len(found) <= EXECUTION_ID_CHARS:
        return found
    return None
