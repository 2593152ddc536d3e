"""The parsers behind every query the projector takes (``since``, ``limit``, ``until``,
``page``, ``status``) and every position ``replay`` takes: whatever the text, a value
or a ``BadQuery``/``BadPosition`` that says why, never another exception (issue 13:
``since=99999999999D`` and ``limit=²`` answered 500)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ricochet.engine import Projection
from ricochet.errors import BadPosition, BadQuery
from ricochet.workers.log.replay import MAX_OFFSET, parse_position, stream_offset
from ricochet.workers.read.api import MAX_LIMIT, parse_query, select, states
from ricochet.workers.read.web import MAX_PAGE, executions_page

T = TypeVar("T")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DIGITS = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=30)
"""Decimal digits of every script and digit-like characters (``²``, ``①``)."""
TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(lambda d, u: d + u, DIGITS, st.sampled_from(["s", "m", "h", "D", ""])),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**40), st.sampled_from("smhD")),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
)


def refusal_or(call: Callable[[], T]) -> T | BadPosition | BadQuery:
    """What ``call`` returns, or the refusal it raises (any other exception fails the test)."""
    try:
        return call()
    except (BadPosition, BadQuery) as refused:
        return refused


@given(TEXT)
@example("99999999999D")
@example("²")
@example("9" * 5000 + "D")
@example("0001-01-01T00:00:00+05:00")
@example("9999-12-31T23:59:59-05:00")
def test_a_position_is_a_value_or_says_why(text: str) -> None:
    position = refusal_or(lambda: parse_position(text, NOW))
    if isinstance(position, (BadPosition, BadQuery)):
        assert str(position)
        return
    stream_offset(position)  # and the broker can be asked for it
    if isinstance(position, datetime):
        assert position.tzinfo is not None
        position.astimezone(UTC)
    elif isinstance(position, int):
        assert 0 <= position <= MAX_OFFSET


@pytest.mark.parametrize(
    "text", ["99999999999D", "²", "\u0663", "\u0661\u0662m", "12\n", "9" * 20, "9" * 5000 + "h"]
)
def test_what_issue_13_found_is_refused(text: str) -> None:
    with pytest.raises(BadPosition):
        parse_position(text, NOW)


def test_ascii_numbers_within_range_still_work() -> None:
    assert MAX_OFFSET == parse_position(str(MAX_OFFSET), NOW)
    assert NOW - timedelta(days=999) == parse_position("999D", NOW)
    assert "first" == stream_offset(parse_position("1970-01-01T00:00:30", NOW))


QUERY = st.dictionaries(
    st.sampled_from(["status", "target", "since", "limit", "other"]),
    st.one_of(TEXT, DIGITS, st.sampled_from(["failed", "1", str(MAX_LIMIT), "0", "1001"])),
)


@given(QUERY)
@example({"since": "99999999999D"})
@example({"limit": "²"})
@example({"limit": "9" * 5000})
def test_an_api_query_is_answered_or_refused_with_a_reason(query: dict[str, str]) -> None:
    asked = refusal_or(lambda: parse_query(query, NOW))
    if isinstance(asked, (BadPosition, BadQuery)):
        assert str(asked)
        return
    assert 1 <= asked.limit <= MAX_LIMIT
    assert [] == select(Projection(), query, NOW)


@pytest.mark.parametrize("limit", ["²", "٣", "0", "1001", "-1", "+5", " 5", "5 ", "", "9" * 5000])
def test_limits_outside_ascii_1_to_1000_are_refused(limit: str) -> None:
    with pytest.raises(BadQuery, match="limit must be a whole number from 1 to 1000"):
        parse_query({"limit": limit}, NOW)


PAGE_QUERY = st.dictionaries(
    st.sampled_from(["status", "target", "since", "until", "page"]),
    st.one_of(TEXT, DIGITS, st.sampled_from(["", "1", str(MAX_PAGE), str(MAX_PAGE + 1)])),
)


@given(PAGE_QUERY)
@example({"page": "²"})
@example({"until": "0001-01-01T00:00:00+05:00"})
@example({"until": "9" * 5000})
def test_a_page_query_is_a_page_or_a_reason(query: dict[str, str]) -> None:
    response = refusal_or(lambda: executions_page(states(Projection()), query, NOW))
    if isinstance(response, (BadPosition, BadQuery)):
        assert str(response)
        return
    assert 200 == response.status


def test_an_error_echoes_a_long_value_cut_short() -> None:
    with pytest.raises(BadQuery) as refused:
        parse_query({"since": "x" * 5000}, NOW)
    assert len(str(refused.value)) < 200
