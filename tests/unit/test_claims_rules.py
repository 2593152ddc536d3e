"""The at-most-once rules (``engine.claims``): which copy of an attempt may try, and who won.

Given the events a worker's book has read, when a copy of a work message arrives,
then it tries, is dropped, waits for the book to read further, or is refused. No
time from the message takes part: only what the log says.
"""

from __future__ import annotations

from ricochet.contracts import Event
from ricochet.engine.claims import ENDED_MEMORY, Copy, OpenAttempts
from tests.unit.builders import (
    EXECUTION,
    cancel_requested,
    cancelled,
    execution_failed,
    execution_succeeded,
    failed,
    requested,
    retry_scheduled,
    started,
    succeeded,
)

OTHER = "0" * 32


def book_of(*events: Event | dict[str, object]) -> OpenAttempts:
    book = OpenAttempts()
    for event in events:
        book.note(event if isinstance(event, dict) else event.model_dump(mode="json"))
    return book


def start(attempt: int, claim: str, execution_id: str = EXECUTION) -> dict[str, object]:
    raw = started(attempt, attempt, execution_id=execution_id).model_dump(mode="json")
    return {**raw, "claim": claim}


def verdicts(book: OpenAttempts, attempt: int, execution_id: str = EXECUTION) -> tuple[Copy, Copy]:
    """The verdict before and after the book has read the log up to the copy's arrival."""
    return (
        book.judge(execution_id, attempt, read_to_now=False),
        book.judge(execution_id, attempt, read_to_now=True),
    )


def test_a_requested_execution_opens_its_first_attempt() -> None:
    assert (Copy.TRY, Copy.TRY) == verdicts(book_of(requested(0)), 1)


def test_a_copy_of_a_started_attempt_is_dropped_however_long_ago_it_started() -> None:
    """No horizon: what the log says was claimed stays claimed while the execution lives."""
    book = book_of(requested(0), start(1, "first"))
    for n in range(5_000):  # a busy log meanwhile
        book.note(requested(0, execution_id=f"{n:032x}").model_dump(mode="json"))

    assert (Copy.DROP, Copy.DROP) == verdicts(book, 1)


def test_a_copy_of_an_ended_execution_is_dropped_and_never_opens_again() -> None:
    book = book_of(requested(0), start(1, "a"), succeeded(1, 2), execution_succeeded(1, 2))
    book.note(requested(0).model_dump(mode="json"))  # a late copy of its request

    assert (Copy.DROP, Copy.DROP) == verdicts(book, 1)
    assert not book.live


def test_a_copy_of_an_execution_ended_past_the_memory_is_not_open_never_tried() -> None:
    """Past ``ENDED_MEMORY`` endings the book no longer knows it ended: the copy is still
    refused, because nothing on the log opened it (a dead letter, not a run)."""
    book = book_of(requested(0), start(1, "a"), failed(1, 2), execution_failed(1, 2))
    for n in range(ENDED_MEMORY):
        other = f"{n:032x}"
        book.note(requested(0, execution_id=other).model_dump(mode="json"))
        ended = execution_succeeded(1, 2).model_dump(mode="json")
        book.note({**ended, "execution_id": other})

    assert (Copy.WAIT, Copy.NOT_OPEN) == verdicts(book, 1)


def test_work_for_an_execution_never_requested_waits_then_is_not_open() -> None:
    """Its request may be just ahead of the book; once the book has read up to the
    delivery's arrival, a request would be there: without one, it never runs."""
    assert (Copy.WAIT, Copy.NOT_OPEN) == verdicts(book_of(requested(0)), 1, OTHER)


def test_a_start_of_an_execution_never_requested_opens_nothing() -> None:
    book = book_of(start(1, "forged", OTHER))

    assert (Copy.WAIT, Copy.NOT_OPEN) == verdicts(book, 1, OTHER)
    assert not book.won(OTHER, 1, "forged")


def test_a_retry_is_open_only_once_scheduled() -> None:
    book = book_of(requested(0), start(1, "a"), failed(1, 2))
    assert (Copy.WAIT, Copy.NOT_OPEN) == verdicts(book, 2)

    book.note(retry_scheduled(1, 2, 10).model_dump(mode="json"))

    assert (Copy.TRY, Copy.TRY) == verdicts(book, 2)
    assert (Copy.DROP, Copy.DROP) == verdicts(book, 1)  # a copy of the failed attempt


def test_the_first_claim_of_the_open_attempt_wins_and_a_later_one_does_not() -> None:
    book = book_of(requested(0), start(1, "first"), start(1, "second"))

    assert (True, False) == (book.won(EXECUTION, 1, "first"), book.won(EXECUTION, 1, "second"))


def test_a_claim_of_an_attempt_that_is_not_open_never_wins() -> None:
    """A forged retry's start, say: attempt 3 was never scheduled."""
    book = book_of(requested(0), start(3, "mine"))

    assert not book.won(EXECUTION, 3, "mine")


def test_a_cancel_that_claims_first_ends_the_execution_and_beats_a_later_start() -> None:
    book = book_of(requested(0), cancelled(1, 1, claim="cancel"), start(1, "late"))

    assert (Copy.DROP, False) == (
        book.judge(EXECUTION, 1, read_to_now=True),
        book.won(EXECUTION, 1, "late"),
    )
    assert book.claimed(EXECUTION, 1)


def test_a_cancel_while_an_attempt_runs_claims_the_next_and_its_failure_ends_it() -> None:
    book = book_of(requested(0), start(1, "a"), cancel_requested(2, 2, claim="cancel"))
    assert book.claimed(EXECUTION, 2)  # the runner schedules no retry

    book.note(failed(1, 3).model_dump(mode="json"))

    assert not book.live
    assert (Copy.DROP, Copy.DROP) == verdicts(book, 2)


def test_a_cancel_that_lost_to_a_start_changes_nothing() -> None:
    book = book_of(requested(0), start(1, "a"), cancelled(1, 2, claim="cancel"))

    assert book.won(EXECUTION, 1, "a")
    assert book.live


def test_events_that_are_not_events_change_nothing() -> None:
    book = book_of(requested(0))
    odd: list[dict[str, object]] = [
        {},
        {"type": 3},
        {"type": "attempt_started.v2", "execution_id": EXECUTION},
    ]
    for raw in odd:
        assert book.note(raw) is None

    assert (Copy.TRY, Copy.TRY) == verdicts(book, 1)
