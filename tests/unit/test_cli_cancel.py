"""What ``ricochet cancel`` prints once the cancel is on the log: one line a person acts on."""

from __future__ import annotations

from ricochet.workers.cli.starting import cancel_report
from tests.unit.builders import (
    EXECUTION,
    RESULT,
    cancel_requested,
    cancelled,
    execution_succeeded,
    requested,
    started,
    succeeded,
)
from tests.unit.test_decider import given


def test_a_waiting_execution_is_reported_cancelled() -> None:
    state = given(requested(0), cancelled(1, 2))

    assert f"cancelled {EXECUTION}: attempt 1 will not run" == cancel_report(state)


def test_a_running_attempt_is_reported_left_to_finish() -> None:
    state = given(requested(0), started(1, 1), cancel_requested(2, 2))

    assert (
        f"cancel of {EXECUTION} recorded: attempt 1 is running; it finishes, and nothing runs"
        " after it"
    ) == cancel_report(state)


def test_an_attempt_that_succeeded_meanwhile_is_reported_with_its_result_kept() -> None:
    state = given(
        requested(0),
        started(1, 1),
        cancel_requested(2, 2),
        succeeded(1, 3, RESULT),
        execution_succeeded(1, 3, RESULT),
    )

    assert (
        f"cancel of {EXECUTION} recorded, but attempt 1 succeeded meanwhile: its result is kept"
    ) == cancel_report(state)
