"""Acking work deliveries in runs: one ``multiple`` ack covers many settled messages.

An ack is one frame and one socket write, and a worker draining thousands of
messages a second spent a fifth of its time writing them. Deliveries on a
channel carry increasing tags; once every delivery up to a tag is settled, a
single ``basic.ack(tag, multiple=True)`` acks them all. So ``ack`` marks a
message as done and, at the end of the loop's turn, the longest settled run from
the oldest delivery is acked at once.

A message is acked no earlier than before (only later, by at most the time the
oldest unsettled delivery before it takes to settle), so the log still holds
its ``AttemptStarted`` first. Deliveries of a channel that has since closed are
forgotten: the broker requeued them, and their tags mean nothing on a new channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelInvalidStateError

from ricochet.workers.amqp.broker import TRANSIENT
from ricochet.workers.end_of_turn import EndOfTurn
from ricochet.workers.logs import get_logger

log = get_logger(__name__)


@dataclass(slots=True)
class _ChannelRun:
    """One channel's unsettled deliveries, oldest first, and whether each is done."""

    pending: dict[int, AbstractIncomingMessage | None] = field(default_factory=dict)
    """tag -> the message once acked by us (None while unsettled); insertion = tag order."""
    dropped: set[int] = field(default_factory=set)
    """Tags settled some other way (nacked, requeued): skipped, never acked."""


@dataclass(slots=True)
class RunAcker:
    """Batches acks of messages registered with ``delivered``; see the module docstring."""

    _runs: dict[int, tuple[object, _ChannelRun]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _flush: EndOfTurn = field(init=False)

    def __post_init__(self) -> None:
        self._flush = EndOfTurn(self._ack_settled_runs)

    def delivered(self, message: AbstractIncomingMessage) -> None:
        """Note a delivery (in the consumer callback, so in tag order)."""
        self._run(message).pending[_tag(message)] = None

    def tracks(self, message: AbstractIncomingMessage) -> bool:
        """Was ``message`` registered here (so it must be acked here, not on its own)?"""
        run = self._known(message)
        return run is not None and _tag(message) in run.pending

    def unsettled(self, message: AbstractIncomingMessage) -> bool:
        """Registered, and neither acked nor dropped yet."""
        run = self._known(message)
        tag = _tag(message)
        return run is not None and run.pending.get(tag, 0) is None and tag not in run.dropped

    def _known(self, message: AbstractIncomingMessage) -> _ChannelRun | None:
        """The run of the message's channel; None once that channel closed (asking a
        closed channel's message for its channel raises): the broker requeued it."""
        if not still_held(message):
            return None
        channel, run = self._runs.get(id(message.channel), (None, None))
        return run if channel is message.channel else None

    def ack(self, message: AbstractIncomingMessage) -> None:
        """Ack ``message`` with the next run it completes."""
        self._run(message).pending[_tag(message)] = message
        self._flush.plan()

    def drop(self, message: AbstractIncomingMessage) -> None:
        """``message`` was settled another way (nack): stop waiting for it."""
        run = self._run(message)
        if _tag(message) in run.pending:
            run.dropped.add(_tag(message))
            self._flush.plan()

    def _run(self, message: AbstractIncomingMessage) -> _ChannelRun:
        channel = message.channel
        known = self._runs.get(id(channel))
        if known is None or known[0] is not channel:
            known = (channel, _ChannelRun())
            self._runs[id(channel)] = known
        return known[1]

    async def flush(self) -> None:
        """Ack every settled delivery now, and wait for the acks: before a channel is
        closed on purpose. Settled deliveries behind one still unsettled (its handler
        gave up, or never ran) are acked one by one: they must not be redelivered."""
        self._ack_settled_runs()
        for _, run in self._runs.values():
            for tag, message in list(run.pending.items()):
                if message is not None and tag not in run.dropped:
                    del run.pending[tag]
                    self._track(_ack_one(message))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _track(self, acking: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(acking)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ack_settled_runs(self) -> None:
        for key, (channel, run) in list(self._runs.items()):
            if getattr(channel, "is_closed", False):
                del self._runs[key]
                continue
            last = _settled_run(run)
            if last is not None:
                self._track(_ack_up_to(last))


def _settled_run(run: _ChannelRun) -> AbstractIncomingMessage | None:
    """Pop the settled deliveries from the front; the last one of ours to ack, if any."""
    last: AbstractIncomingMessage | None = None
    while run.pending:
        tag, message = next(iter(run.pending.items()))
        if tag in run.dropped:
            run.dropped.discard(tag)
        elif message is not None:
            last = message
        else:
            break
        del run.pending[tag]
    return last


async def _ack_up_to(message: AbstractIncomingMessage) -> None:
    """One frame for the whole run; a closed channel means the broker requeued them."""
    with contextlib.suppress(*TRANSIENT):
        await message.ack(multiple=True)
        return
    log.warning("work.acks_lost", up_to_tag=_tag(message))


async def _ack_one(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(*TRANSIENT):
        await message.ack()
        return
    log.warning("work.acks_lost", up_to_tag=_tag(message))


def still_held(message: AbstractIncomingMessage) -> bool:
    """False once the delivery's channel has closed (the broker requeued the message)."""
    try:
        return not message.channel.is_closed
    except ChannelInvalidStateError:
        return False


def _tag(message: AbstractIncomingMessage) -> int:
    tag = message.delivery_tag
    assert tag is not None, "a consumed message has a delivery tag"
    return tag
