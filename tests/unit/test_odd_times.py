"""One time range for every writer and reader, checked where a time enters (SPEC 7.9, 7.12),
and a judge that reports what the log does not let it recover (issue 22, items 3 and 6).

Measured on main d4a9b97: a work message's ``ricochet-requested-at-ms`` of year 0001 raised
``OverflowError`` inside the worker's handler; ``decode_batch`` and ``decode(Heartbeat)``
raised ``OverflowError`` for ``9999-12-31T23:59:59-14:00``; the supervisor's judge raised
``AssertionError`` on a lost retry whose execution had no request on the log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DUE_AT_HEADER,
    MAX_TIME,
    MIN_TIME,
    REQUESTED_AT_HEADER,
    Event,
    Heartbeat,
    RetryPolicy,
    WorkMessage,
    check_time_ms,
    decode,
    decode_batch,
    encode,
)
from ricochet.contracts.limits import MAX_DELAY_S, MAX_TIME_MS
from ricochet.engine import fold
from ricochet.engine.policy import parse_retries
from ricochet.engine.recovery import work_of
from ricochet.engine.watch import as_time
from ricochet.errors import BadMessage, BadPosition, DecodeError, InvalidRetryPolicy, NotReadable
from ricochet.workers.delivery.disposition import Retry
from ricochet.workers.log.replay import parse_position
from ricochet.workers.runtime.incoming import parse
from ricochet.workers.settings import Settings
from ricochet.workers.supervision.recovery import Recovery
from tests.unit.builders import failed, retry_scheduled, started

YEAR_1 = "0001-01-01T00:00:00Z"
YEAR_10000_IN_UTC = "9999-12-31T23:59:59-14:00"
YEAR_1_MS = -62135596800000


def request_at(at: str) -> bytes:
    return (
        b'[{"type":"execution_requested.v2","event_id":"e","execution_id":"x","attempt":0,'
        b'"at":"' + at.encode() + b'","target":"t"}]'
    )


@pytest.mark.parametrize("at", [YEAR_1, YEAR_10000_IN_UTC, "1969-12-31T23:59:59Z"])
def test_an_event_time_outside_the_range_is_a_decode_error_naming_it(at: str) -> None:
    """Given a schema-valid event at a time outside 1970..9998, when it is decoded,
    then it is a DecodeError that names the field and the range (never OverflowError)."""
    with pytest.raises(DecodeError, match=r"at: Value error, a time .* is outside the range"):
        decode_batch(request_at(at))


def test_the_ends_of_the_range_are_read() -> None:
    first = decode_batch(request_at("1970-01-01T00:00:00Z"))[0]
    last = decode_batch(request_at("9998-12-31T23:59:59Z"))[0]
    assert (MIN_TIME, datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)) == (first.at, last.at)


def test_a_heartbeat_at_the_calendars_edge_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="outside the range"):
        decode(Heartbeat, b'{"worker":"w","at":"' + YEAR_10000_IN_UTC.encode() + b'"}')


def test_times_in_milliseconds_share_the_range() -> None:
    assert (0, MAX_TIME_MS) == (check_time_ms(0), check_time_ms(MAX_TIME_MS))
    assert MAX_TIME == datetime.fromtimestamp(MAX_TIME_MS / 1000, UTC).replace(
        microsecond=MAX_TIME.microsecond
    )
    for outside in (-1, MAX_TIME_MS + 1, YEAR_1_MS):
        with pytest.raises(NotReadable, match="outside the range"):
            check_time_ms(outside)


def test_a_delay_past_a_year_is_refused_when_declared_and_when_read() -> None:
    """A retry's due time is its failure's time plus its delay: bounded, it stays a time."""
    with pytest.raises(InvalidRetryPolicy, match="a delay must be <="):
        parse_retries("t", (1, MAX_DELAY_S * 2))
    with pytest.raises(ValueError, match="less than or equal"):
        RetryPolicy(retries=1, delay_min=0, delay_max=1e300)


@dataclass
class _Message:
    """What ``parse`` reads of a delivery."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None


def _parse(headers: dict[str, Any], timestamp: datetime | None = None) -> Any:
    body = encode(WorkMessage(execution_id="e", target="t"))
    return parse(cast(AbstractIncomingMessage, _Message(body, headers, timestamp)))


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({REQUESTED_AT_HEADER: YEAR_1_MS}, REQUESTED_AT_HEADER),
        ({REQUESTED_AT_HEADER: MAX_TIME_MS + 1}, REQUESTED_AT_HEADER),
        ({ATTEMPT_HEADER: 2, DUE_AT_HEADER: -1}, DUE_AT_HEADER),
        ({ATTEMPT_HEADER: 2, DUE_AT_HEADER: 2**62}, DUE_AT_HEADER),
        ({ATTEMPT_HEADER: 2**31}, ATTEMPT_HEADER),
    ],
)
def test_a_work_header_out_of_range_is_a_bad_message_naming_it(
    headers: dict[str, Any], named: str
) -> None:
    """Given a work message whose time or attempt header is out of range, when it is
    parsed, then it is a BadMessage (dead-lettered with this reason) naming the header."""
    with pytest.raises(BadMessage, match=named):
        _parse(headers)


def test_a_timestamp_out_of_range_is_a_bad_message() -> None:
    with pytest.raises(BadMessage, match="the message's timestamp"):
        _parse({}, datetime(9999, 6, 1, tzinfo=UTC))


def test_headers_in_range_are_read() -> None:
    delivery = _parse(
        {ATTEMPT_HEADER: 2, DUE_AT_HEADER: 1_000, REQUESTED_AT_HEADER: 0},
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert (2, 1.0, 0) == (delivery.attempt, delivery.due_at, delivery.requested_at_ms)


@pytest.mark.parametrize("text", [YEAR_1, "1969-12-31T23:59:59Z"])  # year 10000: None on main
def test_the_supervisors_event_times_share_the_range(text: str) -> None:
    """A time the supervisor reads lazily (a retry's due time, a key's time) is no time
    when out of range: it never computes with it."""
    assert as_time(text) is None
    assert MIN_TIME == as_time("1970-01-01T00:00:00+00:00")


def test_a_replay_position_before_1970_is_refused_by_name() -> None:
    """The broker takes a stream position as an unsigned Unix time: 1969 cannot be asked."""
    with pytest.raises(BadPosition, match="outside the range"):
        parse_position("1969-12-31T23:59:59Z", datetime(2026, 1, 1, tzinfo=UTC))


NO_REQUEST: list[Event] = [started(1, 1), failed(1, 2), retry_scheduled(1, 2, delay_s=10)]
"""A work message with no request on the log: it ran, failed, and scheduled a retry."""


def test_the_work_of_an_execution_with_no_request_is_none() -> None:
    assert work_of(fold(NO_REQUEST)) is None


@dataclass
class _Settler:
    scheduled: list[Retry] = field(default_factory=list)

    async def schedule(self, retry: Retry) -> None:
        self.scheduled.append(retry)


def test_a_lost_retry_with_no_request_is_reported_and_nothing_is_published() -> None:
    """Given a lost retry of an execution with no request, when the judge recovers it,
    then it is counted as unrecoverable, nothing is published, and nothing raises."""
    settler = _Settler()
    recovery = Recovery(Settings(), cast(Any, None), cast(Any, settler), lambda: MIN_TIME)

    asyncio.run(recovery.republish(fold(NO_REQUEST)))

    assert (1, []) == (recovery.unrecoverable, settler.scheduled)
