"""The executions page (issue 12): filters by time range, pages, escapes user data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ricochet.engine import ExecutionState, Status
from ricochet.errors import BadQuery
from ricochet.workers.read.timeline_html import render
from ricochet.workers.read.web import PAGE_SIZE, executions_page

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Listed:
    """``States`` over a list, newest first, as the store answers."""

    def __init__(self, states: list[ExecutionState]) -> None:
        self.states = sorted(states, key=lambda s: s.requested_at or NOW, reverse=True)

    def get(self, execution_id: str) -> ExecutionState | None:
        return next((s for s in self.states if s.execution_id == execution_id), None)

    def count(self) -> int:
        return len(self.states)

    def matching(
        self, status: Status | None, target: str | None, since: datetime | None, limit: int
    ) -> list[ExecutionState]:
        chosen = [
            s
            for s in self.states
            if (status is None or s.status is status)
            and (target is None or s.target == target)
            and (since is None or (s.requested_at is not None and s.requested_at >= since))
        ]
        return chosen[:limit]


def execution(number: int, target: str = "t.ok") -> ExecutionState:
    return ExecutionState(
        execution_id=f"e{number:04d}",
        status=Status.SUCCEEDED,
        target=target,
        requested_at=NOW - timedelta(minutes=number),
    )


def html(states: list[ExecutionState], **query: str) -> str:
    response = executions_page(Listed(states), query, NOW)
    assert response.text is not None
    return response.text


def test_pages_hold_fifty_newest_first_with_links_both_ways() -> None:
    """Given 120 executions, page 2 shows the 51st to the 100th, and links to pages 1 and 3."""
    states = [execution(n) for n in range(120)]
    second = html(states, page="2")
    assert "e0050" in second
    assert "e0099" in second
    assert "e0049" not in second
    assert "e0100" not in second
    assert "page=1" in second
    assert "page=3" in second
    assert PAGE_SIZE == 50


def test_until_ends_the_time_range() -> None:
    """``until`` keeps executions requested at or before it (``since`` starts the range)."""
    states = [execution(n) for n in range(10)]
    until = (NOW - timedelta(minutes=5)).isoformat()
    shown = html(states, until=until, since="2026-12-01T11:52:00")
    assert [f"e{n:04d}" for n in range(5, 9)] == [
        f"e{n:04d}" for n in range(10) if f"e{n:04d}" in shown
    ]


def test_user_data_is_escaped_on_both_pages() -> None:
    """Targets, arguments and errors are user data: markup in them is shown as text."""
    hostile = "<script>alert(1)</script>"
    state = replace(execution(1, target=hostile), args=(hostile,))
    for page in (html([state]), render(state, NOW)):
        assert hostile not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_bad_page_or_until_says_what_is_wrong() -> None:
    with pytest.raises(BadQuery, match="page"):
        html([], page="0")
    with pytest.raises(BadQuery, match="until"):
        html([], until="yesterday")
