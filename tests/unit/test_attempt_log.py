"""The worker's ``attempt.ended`` line: what an on-call engineer greps for.

Given an attempt's outcome and the events recorded for it, then the line carries the
error's type and message and, when a retry follows, the next attempt and its due time.
"""

from __future__ import annotations

from ricochet.contracts import FailureCause
from ricochet.workers.runtime.outcomes import ended_fields
from ricochet.workers.runtime.runner import Raised, Returned
from tests.unit.builders import BOOM, RESULT, execution_failed, failed, retry_scheduled, succeeded

FAILURE = Raised(BOOM)


def test_a_failure_followed_by_a_retry_names_the_error_and_the_next_attempt() -> None:
    actual = ended_fields(FAILURE, (failed(1, 3), retry_scheduled(1, 3, 300.0)))

    assert {
        "outcome": "raised",
        "cause": "exception",
        "error_type": "builtins.ConnectionError",
        "error": "SMTP server refused the connection",
        "next_attempt": 2,
        "due_at": "2026-01-01T00:05:03+00:00",
    } == actual


def test_a_last_failure_says_the_execution_failed() -> None:
    ran = Raised(BOOM, FailureCause.NOT_RETRYABLE, retryable=False)

    actual = ended_fields(ran, (failed(1, 3), execution_failed(1, 3)))

    assert ("not_retryable", "failed") == (actual["cause"], actual["execution"])
    assert "next_attempt" not in actual


def test_a_failure_after_a_cancel_says_the_execution_was_cancelled() -> None:
    assert "cancelled" == ended_fields(FAILURE, (failed(1, 3),))["execution"]


def test_a_success_is_one_word() -> None:
    assert {"outcome": "returned"} == ended_fields(Returned(RESULT), (succeeded(1, 2, RESULT),))
