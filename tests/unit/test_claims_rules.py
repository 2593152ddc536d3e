"""The at-most-once rules (``engine.claims``): which copy of an attempt may try, and who won.

Given what a worker has seen of the log, when a copy of a work message arrives,
then it is tried, dropped or checked against the log first.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ricochet.engine.claims import (
    CLOCK_SKEW,
    Copy,
    FirstStarts,
    earliest_start,
    judge_copy,
    memory_covers,
    scan_floor,
)
from tests.unit.builders import at

HORIZON_S = 120.0


def test_a_copy_whose_attempt_started_lately_is_dropped() -> None:
    """Given the memory covers the attempt and saw its start, the copy never tries."""
    assert Copy.DROP == judge_copy(covered=True, started_lately=True)


def test_a_copy_whose_attempt_never_started_tries() -> None:
    """Given the memory covers the attempt and saw no start, the copy records its own."""
    assert Copy.TRY == judge_copy(covered=True, started_lately=False)


def test_a_copy_whose_attempt_the_memory_saw_claimed_is_dropped_even_if_not_covered() -> None:
    """What the memory holds is on the log: a cancel held past the horizon, say."""
    assert Copy.DROP == judge_copy(covered=False, started_lately=True)


def test_a_copy_older_than_the_memory_asks_the_log() -> None:
    """Given the attempt may have started before the memory began, the log decides."""
    assert Copy.ASK_LOG == judge_copy(covered=False, started_lately=False)


def test_memory_covers_attempts_due_after_it_began_less_the_clock_skew() -> None:
    """A retry due after the worker started following the log (allowing for skew) is covered;
    one due just before that is not."""
    since = at(100)
    now = at(110)

    assert memory_covers(since + CLOCK_SKEW, since, now, HORIZON_S)
    assert not memory_covers(since + CLOCK_SKEW - timedelta(seconds=1), since, now, HORIZON_S)


def test_memory_forgets_beyond_its_horizon() -> None:
    """After the horizon, only attempts due within it are covered."""
    since = at(0)
    now = at(1_000)
    edge = now - timedelta(seconds=HORIZON_S) + CLOCK_SKEW

    assert memory_covers(edge, since, now, HORIZON_S)
    assert not memory_covers(edge - timedelta(seconds=1), since, now, HORIZON_S)


def test_no_memory_or_no_time_covers_nothing() -> None:
    """A worker not yet following the log, or a message with no time, asks the log."""
    assert not memory_covers(at(50), None, at(60), HORIZON_S)
    assert not memory_covers(None, at(0), at(60), HORIZON_S)


def test_earliest_start_is_the_due_time_for_a_retry_and_the_request_for_a_first() -> None:
    due_s = at(30).timestamp()
    requested_ms = round(at(5).timestamp() * 1000)

    assert at(30) == earliest_start(2, due_s, requested_ms, at(1))
    assert at(5) == earliest_start(1, due_s, requested_ms, at(1))
    assert at(1) == earliest_start(1, None, None, at(1))


def test_earliest_start_of_a_forged_time_falls_back_to_the_publish_time() -> None:
    """A due time no datetime can hold is not trusted: the publish time is used."""
    assert at(1) == earliest_start(2, 1e300, None, at(1))


def test_the_log_is_read_from_the_clock_skew_before_the_publish_time() -> None:
    assert at(100) - CLOCK_SKEW == scan_floor(at(100))
    assert scan_floor(None) is None


def test_the_first_start_in_log_order_wins() -> None:
    """Given two tries of one attempt, when both starts are read, the first wins."""
    firsts = FirstStarts(HORIZON_S)

    assert (True, False) == (firsts.note(7, 111, 0.0), firsts.note(7, 222, 0.1))
    assert 111 == firsts.first(7)


def test_a_start_without_a_claim_wins_against_later_claims() -> None:
    """A v1 start (no claim, noted as 0) came first: every later try steps back."""
    firsts = FirstStarts(HORIZON_S)
    firsts.note(7, 0, 0.0)

    assert not firsts.note(7, 111, 1.0)


def test_first_starts_forget_after_the_horizon() -> None:
    """Memory is bounded: a start older than the horizon (plus a bucket) is forgotten."""
    firsts = FirstStarts(HORIZON_S)
    firsts.note(7, 111, 0.0)

    firsts.note(8, 333, HORIZON_S * 1.5)

    assert (None, 333) == (firsts.first(7), firsts.first(8))


@pytest.mark.parametrize("claim", [111, 0])
def test_the_same_claim_read_twice_still_wins(claim: int) -> None:
    """A start message read again (a reconnect re-reads) does not make its try lose."""
    firsts = FirstStarts(HORIZON_S)
    firsts.note(7, claim, 0.0)

    assert firsts.note(7, claim, 0.5)
