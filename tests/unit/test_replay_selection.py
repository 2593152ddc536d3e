"""Choosing what to replay: positions people type, and filters over events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ricochet.errors import BadPosition
from ricochet.workers.log.reader import Entry
from ricochet.workers.log.replay import Selection, parse_position
from tests.unit.builders import FAIL_THEN_SUCCEED

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("first", "first"),
        ("42", 42),
        ("10m", NOW - timedelta(minutes=10)),
        ("2h", NOW - timedelta(hours=2)),
        ("1D", NOW - timedelta(days=1)),
        ("2026-05-01T11:00:00+00:00", datetime(2026, 5, 1, 11, tzinfo=UTC)),
        ("2026-05-01T11:00:00", datetime(2026, 5, 1, 11, tzinfo=UTC)),
    ],
)
def test_positions_people_type(text: str, expected: object) -> None:
    """first, an offset, an interval back from now, or an ISO time (naive means UTC)."""
    assert expected == parse_position(text, NOW)


@pytest.mark.parametrize("text", ["yesterday", "10x", "-3", ""])
def test_nonsense_positions_are_refused(text: str) -> None:
    with pytest.raises(BadPosition):
        parse_position(text, NOW)


def entries() -> list[Entry]:
    return [Entry(offset, (event,)) for offset, event in enumerate(FAIL_THEN_SUCCEED)]


def test_type_filter_keeps_matching_prefixes() -> None:
    """--type attempt_failed keeps attempt_failed.v1 and nothing else."""
    picked = list(Selection(types=("attempt_failed",)).pick(entries()))
    assert picked
    assert {"attempt_failed.v1"} == {e.type for e in picked}


def test_target_filter_follows_the_request() -> None:
    """--target keeps every event of executions requested for that target."""
    target = FAIL_THEN_SUCCEED[0].target  # type: ignore[union-attr]
    assert list(FAIL_THEN_SUCCEED) == list(Selection(target=target).pick(entries()))
    assert [] == list(Selection(target="someone.else").pick(entries()))


def test_until_an_offset_stops_after_it() -> None:
    picked = list(Selection(until=2).pick(entries()))
    assert list(FAIL_THEN_SUCCEED[:3]) == picked


def test_from_a_time_drops_earlier_events_of_the_first_chunk() -> None:
    """The broker starts a time read at a chunk boundary: earlier events are dropped here."""
    middle = FAIL_THEN_SUCCEED[3].at
    picked = list(Selection(start=middle).pick(entries()))
    assert [e for e in FAIL_THEN_SUCCEED if e.at >= middle] == picked


def test_the_progress_bar_counts_from_the_first_offset_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Percent is of the span actually read (from the first offset seen to the tail)."""
    from ricochet.workers.log.replay import ProgressBar

    bar = ProgressBar()
    for offset in (100, 150, 200):
        bar.update(offset, 200)
    bar.close()
    shown = capsys.readouterr().err
    assert "  0%" in shown
    assert " 50%" in shown
    assert "100%  offset 200/200" in shown
