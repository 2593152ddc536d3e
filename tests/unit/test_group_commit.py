"""Group commit's promises when publishes fail, with an exchange that fails on cue.

The broker's side (messages shared, claims on the log) is in
``tests/integration/test_group_commit.py``; this covers what a broker cannot be
made to do on cue: fail one publish and not the next.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractExchange

from ricochet.contracts import AttemptStarted, AttemptSucceeded, NotReadable, TooLarge
from ricochet.contracts.events import CLAIMS_HEADER
from ricochet.workers.log.group_commit import GroupCommitter
from tests.unit import builders


def started(execution_id: str) -> AttemptStarted:
    return builders.started(1, 1, execution_id=execution_id)


class FlakyExchange:
    """Fails the first ``failures`` publishes with a lost connection, then confirms."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.published: list[aio_pika.Message] = []

    async def publish(self, message: aio_pika.Message, **_: Any) -> None:
        await asyncio.sleep(0.001)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection lost")
        self.published.append(message)

    def execution_ids(self) -> list[list[str]]:
        return [[e["execution_id"] for e in orjson.loads(m.body)] for m in self.published]


def committer(exchange: FlakyExchange) -> GroupCommitter:
    return GroupCommitter(cast(AbstractExchange, exchange), max_in_flight=1)


async def test_callers_arriving_in_one_turn_of_the_loop_share_one_message() -> None:
    exchange = FlakyExchange()
    commit = committer(exchange)
    await asyncio.gather(*(commit.commit([started(f"e{i}")]) for i in range(10)))
    assert exchange.execution_ids() == [[f"e{i}" for i in range(10)]]


async def test_callers_arriving_while_a_message_is_in_flight_share_the_next() -> None:
    exchange = FlakyExchange()
    commit = committer(exchange)
    first = asyncio.ensure_future(commit.commit([started("e0")]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await asyncio.gather(*(commit.commit([started(f"e{i}")]) for i in range(1, 10)))
    await first
    assert exchange.execution_ids() == [["e0"], [f"e{i}" for i in range(1, 10)]]


async def test_a_claim_fails_with_its_message_and_the_rest_are_published_again() -> None:
    exchange = FlakyExchange(failures=1)
    commit = committer(exchange)
    claim = asyncio.ensure_future(commit.commit([started("claimed")], claim="c1"))
    facts = asyncio.ensure_future(commit.commit([started("fact")]))
    with pytest.raises(ConnectionError):
        await claim
    await facts
    assert exchange.execution_ids() == [["fact"]]
    assert CLAIMS_HEADER not in (exchange.published[0].headers or {})


async def test_claims_travel_in_the_header_of_their_message() -> None:
    exchange = FlakyExchange()
    commit = committer(exchange)
    await commit.commit([started("first")])
    await asyncio.gather(
        commit.commit([started("a")], claim="c-a"),
        commit.commit([started("b")], claim="c-b"),
        commit.commit([started("c")]),
    )
    assert (exchange.published[1].headers or {})[CLAIMS_HEADER] == "c-a c-b"


async def test_a_cancelled_caller_is_left_out_of_later_messages() -> None:
    exchange = FlakyExchange()
    commit = committer(exchange)
    busy = asyncio.ensure_future(commit.commit([started("busy")]))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(commit.commit([started("gone")]))
    await asyncio.sleep(0)
    gone.cancel()
    await commit.commit([started("kept")])
    await busy
    assert exchange.execution_ids() == [["busy"], ["kept"]]


def succeeded(execution_id: str, result: Any) -> AttemptSucceeded:
    return AttemptSucceeded.model_construct(  # made as a buggy writer might, unvalidated
        event_id=f"{execution_id}/1/succeeded",
        execution_id=execution_id,
        attempt=1,
        at=builders.T0,
        worker="w",
        result=result,
    )


async def test_a_caller_whose_events_cannot_be_encoded_fails_alone() -> None:
    """On main one caller's unwritable value failed the shared message for everyone in it."""
    exchange = FlakyExchange()
    commit = committer(exchange)
    results = await asyncio.gather(
        commit.commit([started("before")]),
        commit.commit([succeeded("bad", 2**70)]),
        commit.commit([started("after")]),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], NotReadable)
    assert "bad" in str(results[1])
    assert results[2] is None
    assert exchange.execution_ids() == [["before", "after"]]


async def test_a_caller_too_large_for_any_message_fails_alone() -> None:
    exchange = FlakyExchange()
    commit = GroupCommitter(cast(AbstractExchange, exchange), max_in_flight=1, max_bytes=10_000)
    results = await asyncio.gather(
        commit.commit([started("small")]),
        commit.commit([succeeded("huge", "x" * 10_000)]),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], TooLarge)
    assert exchange.execution_ids() == [["small"]]


async def test_messages_are_cut_by_bytes_as_well_as_by_events() -> None:
    exchange = FlakyExchange()
    commit = GroupCommitter(cast(AbstractExchange, exchange), max_in_flight=1, max_bytes=10_000)
    await asyncio.gather(*(commit.commit([succeeded(f"e{i}", "x" * 3_000)]) for i in range(5)))
    assert exchange.execution_ids() == [["e0", "e1", "e2"], ["e3", "e4"]]
    assert all(len(message.body) <= 10_000 for message in exchange.published)
