"""Group commit: the events of many attempts in one confirmed stream message.

Every publish costs frames, a confirm and a write in the broker; a worker
draining thousands of attempts a second would spend its time there. So callers
hand their events over and wait, and whatever arrives while earlier messages
wait for their confirms goes out together in the next one: one message at low
load (no added latency), bigger ones as load grows. The log stays a sequence of
immutable events.

What each caller is promised does not change:

- its events travel in one message, so they are confirmed or lost together;
- it resumes only once that message is confirmed, so nothing it does next (an
  ack, running a body, publishing a retry) runs ahead of the log;
- a one-try caller (a claim) fails when its message does; the others are
  published again, after a pause, until confirmed;
- with a ``Witness`` (a process that follows the log), each caller gets back the
  ``Sighting`` of the message that carried its events, to learn whether the log
  really shows it (``workers.log.witness``).

One caller's events can never spoil a message for the others. A group is
encoded in one go (the fast path); when that fails, or the message would be over
the byte limit (``contracts.limits``), each caller's events are encoded on their
own: a caller whose events cannot be written as JSON, or alone would be over the
limit, fails by itself with ``LimitExceeded``, and the callers that do not fit
go back to the front of the line for the next message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aio_pika import Message
from aio_pika.abc import AbstractExchange

from ricochet.contracts import DEFAULT_LIMITS, Event, NotReadable, TooLarge, encode_batch
from ricochet.contracts.events import BATCH_TYPE, CLAIMS_HEADER
from ricochet.errors import LimitExceeded
from ricochet.workers.amqp.broker import (
    TRANSIENT,
    closed_for_good,
    persistent_message,
    publish,
    retry_pause,
)
from ricochet.workers.end_of_turn import EndOfTurn
from ricochet.workers.log.witness import Sighting, Witness
from ricochet.workers.logs import get_logger
from ricochet.workers.observe.metrics import CommitMetrics

log = get_logger(__name__)

MAX_IN_FLIGHT = 4
"""Messages awaiting confirms at once: enough to keep the broker busy, few enough
that callers arriving meanwhile pile up into the next message."""
MAX_EVENTS = 2000
"""Events in one message at most (about 500 kB when they carry little data)."""
MAX_BYTES = DEFAULT_LIMITS.max_message_bytes
"""Bytes in one message at most: far below what the broker takes (an event of one
execution made a 64 MB message unpublishable for every caller in it)."""


@dataclass(slots=True)
class _Waiting:
    """One caller's events, and the future it waits on."""

    events: Sequence[Event]
    claim: str | None
    done: asyncio.Future[Sighting | None]
    once: bool = False
    """One try only: a claim that must not be made twice (``commit``)."""
    tries: int = 0
    body: bytes | None = None
    """This caller's events alone as a JSON array, once the slow path has made it."""


@dataclass(slots=True)
class GroupCommitter:
    """Publishes callers' events in shared messages; see the module docstring."""

    exchange: AbstractExchange
    max_in_flight: int = MAX_IN_FLIGHT
    max_events: int = MAX_EVENTS
    max_bytes: int = MAX_BYTES
    metrics: CommitMetrics | None = None
    writer: str | None = None
    """The AMQP ``user_id`` of every message: the connection's user (``amqp.trust``)."""
    witness: Witness | None = None
    _waiting: list[_Waiting] = field(default_factory=list)
    _in_flight: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _flush: EndOfTurn = field(init=False)

    def __post_init__(self) -> None:
        self._flush = EndOfTurn(self._publish_waiting)

    async def commit(
        self, events: Sequence[Event], claim: str | None = None, once: bool | None = None
    ) -> Sighting | None:
        """Return once ``events`` are confirmed on the log, with the ``Sighting`` of
        their message (None without a witness, or before it watches).

        ``claim`` travels in the message's claims header. With ``once`` (the
        default when there is a claim) the first failure raises (a ``TRANSIENT``
        error: the caller must find out whether ``claim`` landed, see
        ``CLAIMS_HEADER``); otherwise broker trouble is waited out. Events that
        cannot be written, or would not fit in a message alone, raise
        ``LimitExceeded`` (none of them is sent).
        """
        if not events:
            return None
        done: asyncio.Future[Sighting | None] = asyncio.get_running_loop().create_future()
        one_try = claim is not None if once is None else once
        self._waiting.append(_Waiting(events, claim, done, one_try))
        self._flush.plan()
        return await done

    def _encode(self, events: Sequence[Event]) -> bytes:
        """This caller's events alone, or the reason they cannot join any message."""
        ids = sorted({event.execution_id for event in events})[:3]
        try:
            body = encode_batch(list(events))
        except TypeError as err:
            raise NotReadable(f"events of {ids} cannot be written as JSON: {err}") from err
        if len(body) > self.max_bytes:
            raise TooLarge(
                f"events of {ids} are {len(body)} bytes, over the limit of {self.max_bytes}"
                " bytes for one message"
            )
        return body

    def _publish_waiting(self) -> None:
        """At the end of a turn of the loop, so callers woken together share a message."""
        while self._waiting and self._in_flight < self.max_in_flight:
            group = self._take_group()
            self._in_flight += 1
            task = asyncio.create_task(self._publish(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_group(self) -> list[_Waiting]:
        """Whole callers, oldest first, up to ``max_events`` (at least one caller)."""
        count, size = 0, 0
        for waiting in self._waiting:
            if count and size + len(waiting.events) > self.max_events:
                break
            count += 1
            size += len(waiting.events)
        group, self._waiting = self._waiting[:count], self._waiting[count:]
        return [waiting for waiting in group if not waiting.done.done()]

    async def _publish(self, group: list[_Waiting]) -> None:
        try:
            if group:
                await self._send(group)
        finally:
            self._in_flight -= 1
            if self._waiting:
                self._flush.plan()

    def _message_body(self, group: list[_Waiting]) -> bytes | None:
        """The message for ``group``, which may shrink: callers that failed are settled,
        those that did not fit are put back. None when no caller is left."""
        if all(waiting.body is None for waiting in group):
            try:
                body = encode_batch([event for waiting in group for event in waiting.events])
            except TypeError:
                pass
            else:
                if len(body) <= self.max_bytes:
                    return body
        kept: list[_Waiting] = []
        size = 2
        for index, waiting in enumerate(group):
            try:
                part = waiting.body = waiting.body or self._encode(waiting.events)
            except LimitExceeded as err:
                log.warning("events.refused", reason=str(err))
                _settle([waiting], err)
                continue
            if kept and size + len(part) > self.max_bytes:
                self._waiting[:0] = group[index:]
                break
            kept.append(waiting)
            size += len(part) - 1
        group[:] = kept
        return _joined([waiting.body for waiting in kept if waiting.body]) if kept else None

    async def _send(self, group: list[_Waiting]) -> None:
        body = self._message_body(group)
        if body is None:
            return
        claims = [waiting.claim for waiting in group if waiting.claim is not None]
        message = persistent_message(
            body,
            headers={CLAIMS_HEADER: " ".join(claims)} if claims else None,
            type_=BATCH_TYPE,
            user_id=self.writer,
        )
        sighting = None if self.witness is None else self.witness.sent(str(message.message_id))
        try:
            await self._publish_watched(message, sighting)
        except TRANSIENT as err:
            self._after_failure(group, err)
        except asyncio.CancelledError:
            for waiting in group:
                waiting.done.cancel()
            raise
        except Exception as err:  # unroutable, nacked: every caller hears why
            _settle(group, err)
        else:
            if self.metrics is not None:
                self.metrics.confirmed(sum(len(waiting.events) for waiting in group))
            _settle(group, None, sighting)

    async def _publish_watched(self, message: Message, sighting: Sighting | None) -> None:
        """Publish and wait for the confirm, telling the witness how it went."""
        try:
            await publish(self.exchange, message, routing_key="")
        except BaseException:
            if self.witness is not None:
                self.witness.unsent(sighting)
            raise
        if self.witness is not None:
            self.witness.confirmed(sighting)

    def _after_failure(self, group: list[_Waiting], err: BaseException) -> None:
        """Claims fail at once; the rest go round again after a pause, unless closed for good."""
        again = [waiting for waiting in group if not waiting.once]
        if closed_for_good(self.exchange):
            _settle(group, err)
            return
        _settle([waiting for waiting in group if waiting.once], err)
        if not again:
            return
        events = sum(len(waiting.events) for waiting in again)
        log.warning("events.publish_retrying", events=events, error=repr(err))
        pause = retry_pause(again[0].tries)
        for waiting in again:
            waiting.tries += 1
        asyncio.get_running_loop().call_later(pause, self._requeue, again)

    def _requeue(self, again: list[_Waiting]) -> None:
        self._waiting[:0] = [waiting for waiting in again if not waiting.done.done()]
        self._flush.plan()


def _joined(bodies: list[bytes]) -> bytes:
    """JSON arrays joined into one: ``[a,b]`` and ``[c]`` make ``[a,b,c]``."""
    if len(bodies) == 1:
        return bodies[0]
    return b"[" + b",".join(memoryview(body)[1:-1] for body in bodies) + b"]"


def _settle(
    group: list[_Waiting], err: BaseException | None, sighting: Sighting | None = None
) -> None:
    for waiting in group:
        if waiting.done.done():
            continue
        if err is None:
            waiting.done.set_result(sighting)
        else:
            waiting.done.set_exception(err)
