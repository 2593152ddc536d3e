"""Group commit against the broker: callers share stream messages, each caller's events
stay together in one, and claims are findable on the log."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ricochet.contracts import AttemptStarted, Event, ExecutionRequested
from ricochet.engine.claims import Copy
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import declare_core
from ricochet.workers.log.history import read_entries
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.runtime.claims import ClaimBook
from ricochet.workers.settings import Settings
from tests.unit.builders import requested, started

pytestmark = pytest.mark.broker


def request(execution_id: str) -> ExecutionRequested:
    return requested(0, execution_id)


def start(execution_id: str) -> AttemptStarted:
    return started(1, 1, execution_id=execution_id)


async def test_concurrent_callers_share_messages_and_keep_their_events_together(
    settings: Settings,
) -> None:
    connection = await connect(settings, "test")
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        recorder = await EventRecorder.open(channel, names)
        ids = [uuid.uuid4().hex for _ in range(300)]
        claims = {execution_id: uuid.uuid4().hex for execution_id in ids[::2]}

        async def one(execution_id: str) -> None:
            events: list[Event] = [request(execution_id), start(execution_id)]
            claim = claims.get(execution_id)
            if claim is None:
                await recorder.record(events)
            else:
                await recorder.record_once(events, claim)

        await asyncio.gather(*(one(execution_id) for execution_id in ids))
    finally:
        await connection.close()

    entries = await read_entries(settings)
    assert len(entries) < len(ids) / 4, "callers at once should share messages"
    where: dict[str, set[int]] = {}
    for entry in entries:
        for event in entry.events:
            where.setdefault(event.execution_id, set()).add(entry.offset)
    assert sorted(where) == sorted(ids)
    assert all(len(offsets) == 1 for offsets in where.values()), "a caller's events were split"
    for execution_id, claim in claims.items():
        (offset,) = where[execution_id]
        (entry,) = [entry for entry in entries if entry.offset == offset]
        assert claim in entry.claims
    assert sum(len(entry.claims) for entry in entries) == len(claims)


async def test_a_claim_is_found_on_the_log_and_a_lost_one_is_not(settings: Settings) -> None:
    """What a worker asks after a lost confirm: did *my* claim reach the log?"""
    connection = await connect(settings, "test")
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        recorder = await EventRecorder.open(channel, names)
        mine, other = uuid.uuid4().hex, uuid.uuid4().hex
        await recorder.record([request(mine), request(other)])
        book = ClaimBook(connection, names)
        await book.start()
        book.expect("claim-mine", mine, 1)
        book.expect("claim-never-published", other, 1)
        mine_start = start(mine).model_copy(update={"claim": "claim-mine"})
        await recorder.record_once([mine_start], claim="claim-mine")
        assert await book.read_to_now(asyncio.get_running_loop().time(), 30)
        assert book.read("claim-mine")
        assert not book.read("claim-never-published")
        assert Copy.DROP is book.attempts.judge(mine, 1, read_to_now=True)
        assert Copy.TRY is book.attempts.judge(other, 1, read_to_now=True)
        await book.stop()
    finally:
        await connection.close()
