"""Run acks: one multiple ack per run of settled deliveries, never past an unsettled one."""

from __future__ import annotations

import asyncio
from typing import cast

from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelInvalidStateError

from ricochet.workers.delivery.acks import RunAcker


class Channel:
    def __init__(self) -> None:
        self.is_closed = False
        self.acks: list[tuple[int, bool]] = []


class Delivery:
    """What ``RunAcker`` uses of an incoming message: its channel, its tag, ``ack``."""

    def __init__(self, channel: Channel, tag: int) -> None:
        self.channel = channel
        self.delivery_tag = tag

    async def ack(self, multiple: bool = False) -> None:
        self.channel.acks.append((self.delivery_tag, multiple))


def deliveries(channel: Channel, acker: RunAcker, count: int) -> list[AbstractIncomingMessage]:
    messages = [
        cast(AbstractIncomingMessage, Delivery(channel, tag)) for tag in range(1, count + 1)
    ]
    for message in messages:
        acker.delivered(message)
    return messages


async def settle_loop() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_settled_run_is_acked_with_one_frame() -> None:
    channel, acker = Channel(), RunAcker()
    messages = deliveries(channel, acker, 5)
    for message in messages:
        acker.ack(message)
    await settle_loop()
    assert channel.acks == [(5, True)]


async def test_an_unsettled_delivery_holds_back_the_acks_after_it() -> None:
    channel, acker = Channel(), RunAcker()
    first, second, third = deliveries(channel, acker, 3)
    acker.ack(first)
    acker.ack(third)
    await settle_loop()
    assert channel.acks == [(1, True)]
    assert acker.unsettled(second)
    assert not acker.unsettled(third)
    acker.ack(second)
    await settle_loop()
    assert channel.acks == [(1, True), (3, True)]


async def test_a_dropped_delivery_is_skipped_not_waited_for() -> None:
    channel, acker = Channel(), RunAcker()
    first, second, third = deliveries(channel, acker, 3)
    acker.drop(first)
    acker.ack(third)
    acker.ack(second)
    await settle_loop()
    assert channel.acks == [(3, True)]


async def test_a_closed_channel_is_forgotten_and_a_new_one_starts_afresh() -> None:
    old, acker = Channel(), RunAcker()
    (stale,) = deliveries(old, acker, 1)
    old.is_closed = True
    new = Channel()
    (fresh,) = deliveries(new, acker, 1)
    acker.ack(fresh)
    acker.ack(stale)
    await settle_loop()
    assert old.acks == []
    assert new.acks == [(1, True)]
    assert not acker.tracks(stale)


class ClosedDelivery(Delivery):
    """A delivery of a channel that has closed: aio-pika raises when asked its channel."""

    @property
    def channel(self) -> Channel:
        raise ChannelInvalidStateError("No active transport in channel")

    @channel.setter
    def channel(self, value: Channel) -> None:
        pass


def test_a_delivery_whose_channel_closed_is_neither_tracked_nor_unsettled() -> None:
    """A handler that failed after a reconnect asks whether to give its delivery back: the
    answer is no (the broker requeued it), not a ``ChannelInvalidStateError`` raised in a
    task nobody awaits."""
    acker = RunAcker()
    message = cast(AbstractIncomingMessage, ClosedDelivery(Channel(), 1))
    assert not acker.unsettled(message)
    assert not acker.tracks(message)


async def test_a_flush_acks_what_is_settled_behind_an_unsettled_delivery_one_by_one() -> None:
    """Before a channel closes on purpose: the settled run with one frame, the settled
    deliveries behind one whose handler never finished one by one, and a later run's
    multiple ack never names a tag already acked."""
    channel, acker = Channel(), RunAcker()
    first, second, third, fourth, fifth = deliveries(channel, acker, 5)
    for message in (first, third, fourth):
        acker.ack(message)
    await acker.flush()
    assert sorted(channel.acks) == [(1, True), (3, False), (4, False)]
    acker.ack(second)
    acker.ack(fifth)
    await settle_loop()
    assert channel.acks[-1] == (5, True)
