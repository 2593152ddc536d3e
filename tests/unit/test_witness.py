"""Seeing one's own writes on the log (``workers.log.witness``).

The broker's part (a write confirmed and then not on the log) is forced in
``tests/integration/test_lost_writes.py``; these pin the rules: a message is
lost only by proof (a later message of ours seen without it), never because a
follower lags; an idle publisher re-publishes after a quiet while.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aio_pika
from aio_pika.abc import AbstractExchange

from ricochet.workers.log.group_commit import GroupCommitter
from ricochet.workers.log.witness import Sighting, Verdict, Witness
from tests.unit import builders


def confirmed(witness: Witness, message_id: str) -> Sighting:
    sighting = witness.sent(message_id)
    assert sighting is not None
    witness.confirmed(sighting)
    return sighting


def active() -> Witness:
    witness = Witness()
    witness.active = True
    return witness


async def test_a_message_seen_is_seen() -> None:
    witness = active()
    sighting = confirmed(witness, "m1")
    witness.seen("m1")
    assert Verdict.SEEN == await witness.verdict(sighting, quiet_s=1, patience_s=1)


async def test_seen_before_its_confirm_is_heard_is_seen() -> None:
    """A follower can read a message before its publisher hears the confirm."""
    witness = active()
    sighting = witness.sent("m1")
    assert sighting is not None
    witness.seen("m1")
    witness.confirmed(sighting)
    assert Verdict.SEEN == await witness.verdict(sighting, quiet_s=1, patience_s=1)


async def test_a_later_message_seen_without_an_earlier_confirmed_one_proves_it_lost() -> None:
    witness = active()
    lost = confirmed(witness, "m1")
    later = confirmed(witness, "m2")
    witness.seen("m2")
    assert Verdict.LOST == await witness.verdict(lost, quiet_s=1, patience_s=1)
    assert Verdict.SEEN == await witness.verdict(later, quiet_s=1, patience_s=1)
    assert 1 == witness.lost


async def test_a_message_sent_before_the_confirm_proves_nothing() -> None:
    """Two messages in flight at once may reach the log in either order."""
    witness = active()
    first = witness.sent("m1")
    second = witness.sent("m2")
    assert first is not None
    assert second is not None
    witness.confirmed(first)
    witness.confirmed(second)
    witness.seen("m2")
    assert not first.verdict.done()
    witness.seen("m1")
    assert Verdict.SEEN == await witness.verdict(first, quiet_s=1, patience_s=1)


async def test_others_messages_prove_nothing() -> None:
    witness = active()
    sighting = confirmed(witness, "m1")
    witness.seen("someone-else")
    witness.seen(None)
    assert not sighting.verdict.done()


async def test_an_idle_publisher_publishes_again_after_a_quiet_while() -> None:
    witness = active()
    sighting = confirmed(witness, "m1")
    assert Verdict.QUIET == await witness.verdict(sighting, quiet_s=0.01, patience_s=1)


async def test_a_lagging_follower_is_waited_for_not_taken_for_a_loss() -> None:
    """Something was sent after the message: its sighting will decide, however late."""
    witness = active()
    sighting = confirmed(witness, "m1")
    confirmed(witness, "m2")
    assert Verdict.UNKNOWN == await witness.verdict(sighting, quiet_s=0.01, patience_s=0.05)


async def test_nothing_is_watched_until_the_follower_reads() -> None:
    witness = Witness()
    assert witness.sent("m1") is None
    witness.confirmed(None)


async def test_a_failed_publish_and_a_stop_give_verdicts_and_forget() -> None:
    witness = active()
    failed = witness.sent("m1")
    witness.unsent(failed)
    waiting = confirmed(witness, "m2")
    witness.stop()
    assert failed is not None
    assert failed.verdict.result() is Verdict.UNKNOWN
    assert waiting.verdict.result() is Verdict.UNKNOWN
    assert witness.sent("m3") is None


class ConfirmingExchange:
    def __init__(self) -> None:
        self.published: list[aio_pika.Message] = []

    async def publish(self, message: aio_pika.Message, **_: Any) -> None:
        await asyncio.sleep(0.001)
        self.published.append(message)


async def test_each_caller_gets_the_sighting_of_the_message_that_carried_its_events() -> None:
    exchange, witness = ConfirmingExchange(), active()
    commit = GroupCommitter(cast(AbstractExchange, exchange), max_in_flight=1, witness=witness)
    first, second = await asyncio.gather(
        commit.commit([builders.started(1, 1, execution_id="a")]),
        commit.commit([builders.started(1, 1, execution_id="b")]),
    )
    assert first is not None
    assert first is second
    assert first.message_id == exchange.published[0].message_id
    assert 1 == first.confirmed_at
    witness.seen(first.message_id)
    assert Verdict.SEEN == await witness.verdict(first, quiet_s=1, patience_s=1)


async def test_without_a_witness_commit_gives_no_sighting() -> None:
    commit = GroupCommitter(cast(AbstractExchange, ConfirmingExchange()))
    assert None is await commit.commit([builders.started(1, 1, execution_id="a")])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_unseen_for_counts_from_the_first_write_unseen_copies_included() -> None:
    """A copy published after a quiet while does not restart the count: the node's copy
    of the log is behind for as long as none of our writes shows there."""
    clock = Clock()
    witness = Witness(clock)
    witness.active = True
    assert 0.0 == witness.unseen_for()
    first = confirmed(witness, "m1")
    clock.now += 5
    witness.unsent(first)  # given up as quiet: a copy follows
    confirmed(witness, "m1-copy")
    clock.now += 5
    assert 10.0 == witness.unseen_for()
    witness.seen("m1-copy")
    assert 0.0 == witness.unseen_for()
    confirmed(witness, "m2")
    confirmed(witness, "m3")
    clock.now += 2
    witness.seen("m2")
    assert 2.0 == witness.unseen_for(), "m3 is still unseen, since it was confirmed"
