"""Reading the event log (a stream) over AMQP 0.9.1.

Streams close the whole connection on any nack or reject (RABBITMQ.md), so
every delivery is acked in a ``finally`` and nothing here uses ``process()``
or iterators. Offsets are ours to keep: each delivery's ``x-stream-offset``
header is passed on with its events. A message from a writer this process does not
trust (``amqp.trust``) is passed on with its offset and no events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from ricochet.contracts import Event, decode_batch
from ricochet.contracts.codec import one_line
from ricochet.contracts.events import CLAIMS_HEADER
from ricochet.errors import DecodeError
from ricochet.workers.amqp.broker import channel_closed_for_good
from ricochet.workers.amqp.declaring import passive_queue
from ricochet.workers.amqp.topology import Names
from ricochet.workers.amqp.trust import gate_of
from ricochet.workers.log.rewind import REWIND_LOOKBACK, RecentOffsets
from ricochet.workers.logs import get_logger

log = get_logger(__name__)

Offset = str | int | datetime
"""Where to start: "first", "next", "last", an offset, a time, or an interval like "10m"."""

STREAM_PREFETCH = 1000
ACK_EVERY = 100
"""Stream acks only grant credit: one (multiple) ack per hundred deliveries is enough,
well inside the prefetch, and saves a frame per message."""
IDLE_RESUBSCRIBE_S = 10.0
"""A follower that has heard nothing for this long subscribes again from where it
stopped. On RabbitMQ 3.10 a stream consumer can go silent for good when its node's
replica restarts because a leader moved, with no cancel to say so (seen in the
cluster fault test: every long-lived reader of a worker stalled, fresh ones read on).
A quiet log costs one cancel and one consume per follower per period."""
TAIL_FIRST_S = 1.0
TAIL_QUIET_S = 0.05
TAIL_MAX_S = 0.5


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream message: its offset and the events recorded in it."""

    offset: int
    events: tuple[Event, ...]
    message_id: str | None = None
    claims: frozenset[str] = frozenset()
    """Claim ids of the attempt starts in this message (``ricochet-claims`` header)."""
    unreadable: str | None = None
    """Why the body could not be decoded (then ``events`` is empty), else None."""
    size: int = 0
    """The body's length in bytes: lets a reader bound what it holds by bytes, not count."""
    raw: tuple[Any, ...] = ()
    """The events as parsed JSON, not validated: what a ``RawLogFollower`` delivers."""
    untrusted: str | None = None
    """Why the message's writer is not believed (then it has no events and no claims)."""


Handler = Callable[[Entry], Awaitable[None] | None]


class LogFollower:
    """A consumer of the stream that remembers the next offset to resume from.

    ``connect_robust`` re-subscribes with the original arguments: the dict is
    updated in place so a reconnect resumes at last + 1 instead of replaying.
    """

    def __init__(self, channel: AbstractChannel, names: Names, handler: Handler) -> None:
        self._channel = channel
        self._names = names
        self._handler = handler
        self._gate = gate_of(channel)
        self._arguments: dict[str, Any] = {}
        self._tag: str | None = None
        self._queue: AbstractQueue | None = None
        self._unacked = 0
        self._heard = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self._recent = RecentOffsets()
        self.last_offset: int | None = None
        self.unreadable = 0
        """Messages skipped because their body could not be decoded (SPEC 7.7)."""

    async def start(self, offset: Offset = "first") -> None:
        """Subscribe from ``offset``; a passive declare registers the queue for restore (and
        raises ``TopologyMissing`` when there is no log: readers never declare it)."""
        self._arguments["x-stream-offset"] = offset
        self._queue = await passive_queue(self._channel, self._names.events)
        self._tag = await self._queue.consume(self._on_message, arguments=self._arguments)
        self._heard = time.monotonic()
        self._watchdog = asyncio.create_task(self._resubscribe_when_silent())

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._tag is not None and self._queue is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            self._tag = None

    async def _resubscribe_when_silent(self) -> None:
        """Every ``IDLE_RESUBSCRIBE_S`` of silence, subscribe again at the next offset, or,
        if the log was rewound under us (``workers.log.rewind``), before its new tail.

        Only once something was read: the next offset is then known exactly, and a
        duplicate is dropped by offset. A channel being restored is left to its
        restore, which subscribes again itself; the next period tries again. Ends with
        its channel or connection closed on purpose, even if nobody stopped it."""
        while not channel_closed_for_good(self._channel):
            await asyncio.sleep(IDLE_RESUBSCRIBE_S)
            silent = time.monotonic() - self._heard >= IDLE_RESUBSCRIBE_S
            if silent and self.last_offset is not None and self._queue is not None:
                with contextlib.suppress(Exception):
                    await self._resubscribe(self._queue, await self._resume_at(self._queue))

    async def _resume_at(self, queue: AbstractQueue) -> int:
        """The next offset, unless the log's tail shows it was rewound: then the offset
        ``REWIND_LOOKBACK`` before the tail (what was read already is skipped by id)."""
        assert self.last_offset is not None
        tail = await _tail_of(queue)
        if not self._recent.rewound(tail, self.last_offset):
            return self.last_offset + 1
        start = max(0, min(tail) - REWIND_LOOKBACK)
        log.warning("event_log.rewound", last_read=self.last_offset, tail=max(tail), from_=start)
        return start

    async def _resubscribe(self, queue: AbstractQueue, offset: int) -> None:
        if self._tag is not None:
            tag, self._tag = self._tag, None
            await queue.cancel(tag)
        self._unacked = 0
        self._arguments["x-stream-offset"] = offset
        self._tag = await queue.consume(self._on_message, arguments=self._arguments)
        self._heard = time.monotonic()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._heard = time.monotonic()
        try:
            offset = int(message.headers.get("x-stream-offset", -1))  # type: ignore[arg-type]
            read_before = self.last_offset is not None and offset <= self.last_offset
            if read_before and self._recent.is_repeat(offset, message.message_id):
                return
            entry = self._untrusted(offset, message) or self._decode(offset, message)
            self.unreadable += entry.unreadable is not None
            self._recent.note(offset, message.message_id)
            self.last_offset = offset
            self._arguments["x-stream-offset"] = offset + 1
            result = self._handler(entry)
            if result is not None:
                await result
        finally:
            self._unacked += 1
            if self._unacked >= ACK_EVERY:
                self._unacked = 0
                await message.ack(multiple=True)

    def _untrusted(self, offset: int, message: AbstractIncomingMessage) -> Entry | None:
        """An entry without events when the message's writer is not believed, else None."""
        reason = self._gate.refuses(self._names.events, offset, message.user_id)
        if reason is None:
            return None
        return Entry(offset, (), message.message_id, size=len(message.body), untrusted=reason)

    def _decode(self, offset: int, message: AbstractIncomingMessage) -> Entry:
        return _entry(offset, message.body, message.message_id, _claims(message))


class RawLogFollower(LogFollower):
    """A follower that only parses the JSON of each message and validates nothing.

    For the supervisor, which reads every event but decides about few: it
    validates the events of an execution when a decision needs them
    (``engine.watch``), instead of every event of a busy log as it passes.
    """

    def _decode(self, offset: int, message: AbstractIncomingMessage) -> Entry:
        body, claims = message.body, _claims(message)
        try:
            items = orjson.loads(body)
            if not isinstance(items, list):
                raise DecodeError(f"a stream message is a JSON array, not {type(items).__name__}")
        except Exception as err:  # whatever the reason: skip it, and say so
            reason = unreadable_reason(err)
            log.warning("event_log.unreadable_message", offset=offset, reason=reason)
            return Entry(offset, (), message.message_id, claims, unreadable=reason, size=len(body))
        return Entry(offset, (), message.message_id, claims, size=len(body), raw=tuple(items))


REASON_CHARS = 300


def _entry(offset: int, body: bytes, message_id: str | None, claims: frozenset[str]) -> Entry:
    """Decode one stream message; an unreadable one is logged and yields no events.

    Any exception counts, not only ``DecodeError``: a time that overflows when
    turned into UTC raises ``OverflowError`` from inside validation, and one
    such message must not stop the reader (or every reader) at its offset (SPEC
    7.7). The entry keeps its offset and claims, so tails, look-ups and
    progress go on past it, and says why it has no events.
    """
    try:
        return Entry(offset, decode_batch(body), message_id, claims, size=len(body))
    except Exception as err:  # whatever the reason: skip it, and say so
        reason = unreadable_reason(err)
        log.warning("event_log.unreadable_message", offset=offset, reason=reason)
        return Entry(offset, (), message_id, claims, unreadable=reason, size=len(body))


def unreadable_reason(err: BaseException) -> str:
    """One bounded line: the exception's type (DecodeError, OverflowError…) and message."""
    text = one_line(str(err))
    reason = text if isinstance(err, DecodeError) else f"{type(err).__name__}: {text}"
    return reason[:REASON_CHARS]


def _claims(message: AbstractIncomingMessage) -> frozenset[str]:
    """The claims header's ids; anything else in it is ignored (it is only ever looked up)."""
    raw = (message.headers or {}).get(CLAIMS_HEADER)
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    return frozenset(raw.split()) if isinstance(raw, str) else frozenset()


async def stream_channel(connection: AbstractRobustConnection) -> AbstractChannel:
    channel = await connection.channel(publisher_confirms=False)
    await channel.set_qos(prefetch_count=STREAM_PREFETCH)
    return channel


async def _tail_of(queue: AbstractQueue) -> dict[int, str | None]:
    """The log's last chunk, as offset -> message id, read on ``queue``'s channel (see
    ``tail_offset``)."""
    tail: dict[int, str | None] = {}
    arrived = asyncio.Event()

    async def note(message: AbstractIncomingMessage) -> None:
        offset = message.headers.get("x-stream-offset")
        if isinstance(offset, int):
            tail[offset] = message.message_id
        arrived.set()

    tag = await queue.consume(note, arguments={"x-stream-offset": "last"}, no_ack=False)
    try:
        await until_quiet(arrived, TAIL_FIRST_S, TAIL_QUIET_S, TAIL_MAX_S)
    finally:
        await queue.cancel(tag)
    return tail


async def tail_offset(connection: AbstractRobustConnection, names: Names) -> int:
    """The offset of the last message in the log about now, or -1 when it is empty.

    Subscribes at "last" (the start of the last chunk), which a non-empty log
    delivers at once, and stops at the first short pause or after a moment:
    under constant load there is no pause, and a tail a little later than the
    call is as good. Replays then stop there instead of guessing from silence.
    """
    channel = await stream_channel(connection)
    try:
        return max(await _tail_of(await passive_queue(channel, names.events)), default=-1)
    finally:
        await channel.close()


async def until_quiet(arrived: asyncio.Event, first_s: float, quiet_s: float, max_s: float) -> None:
    """Wait up to ``first_s`` for a first delivery, then until none came for ``quiet_s``,
    for ``max_s`` at most: how a reader that started at "last" knows it has the tail."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(arrived.wait(), first_s)
    deadline = asyncio.get_running_loop().time() + max_s
    while arrived.is_set() and asyncio.get_running_loop().time() < deadline:
        arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), quiet_s)


async def _until_done_or_quiet(done: asyncio.Event, progress: Callable[[], int]) -> None:
    """Wait for ``done``; give up when nothing new arrived for a whole second.

    A start after the tail (a later offset or time) delivers nothing, and must
    not wait forever.
    """
    seen = -1
    while not done.is_set() and progress() != seen:
        seen = progress()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1.0)


Progress = Callable[[int, int], None]
"""Told (offset just read, tail offset) as a long read goes on."""


async def read_log(
    connection: AbstractRobustConnection,
    names: Names,
    start: Offset = "first",
    progress: Progress | None = None,
) -> list[Entry]:
    """Every entry from ``start`` to the log's tail as it was when called."""
    entries: list[Entry] = []
    await scan_log(connection, names, start, entries.append, progress=progress)
    return entries


async def scan_log(
    connection: AbstractRobustConnection,
    names: Names,
    start: Offset,
    handler: Callable[[Entry], None],
    *,
    raw: bool = False,
    progress: Progress | None = None,
) -> None:
    """Hand every entry from ``start`` to the log's tail (as it was when called) to
    ``handler``, holding none of them: a reader that needs a few facts from a long
    stretch of log keeps those, not the stretch. ``raw``: entries carry parsed JSON
    (``Entry.raw``) instead of validated events."""
    tail = await tail_offset(connection, names)
    if tail < 0:
        return
    done = asyncio.Event()
    seen = 0

    def keep(entry: Entry) -> None:
        nonlocal seen
        if entry.offset <= tail:
            seen += 1
            handler(entry)
            if progress is not None:
                progress(entry.offset, tail)
        if entry.offset >= tail:
            done.set()

    channel = await stream_channel(connection)
    follower = (RawLogFollower if raw else LogFollower)(channel, names, keep)
    await follower.start(start)
    try:
        await _until_done_or_quiet(done, lambda: seen)
    finally:
        await follower.stop()
        await channel.close()
