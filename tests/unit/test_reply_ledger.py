"""Which replies are owed (``engine.replies``), given the events on the log.

A reply is owed once both its request and its execution's end are on the log,
until ``reply_sent`` is; what is owed goes through a checkpoint unchanged, so a
supervisor that takes over sends what its predecessor did not.
"""

from __future__ import annotations

from ricochet.engine.keys import KeyWindow
from ricochet.engine.replies import reply_requested, reply_sent
from ricochet.engine.vigil import Vigil
from ricochet.engine.watch import Watch
from ricochet.workers.supervision import checkpoint
from tests.unit.builders import (
    EXECUTION,
    RESULT,
    WORKER_1,
    at,
    cancelled,
    execution_succeeded,
    requested,
    started,
    succeeded,
)

NOW = 100.0
ASKED = reply_requested(EXECUTION, "billing.replies", "order-17", at(0), WORKER_1)


def watch_of(*events: object) -> Watch:
    watch = Watch(Vigil(10.0), KeyWindow(86_400.0))
    for event in events:
        watch.note(event, NOW)  # type: ignore[arg-type]
    return watch


def test_nothing_is_owed_while_the_execution_runs() -> None:
    watch = watch_of(requested(), ASKED, started(1, 1, WORKER_1))
    assert ({}, [ASKED.event_id]) == (watch.replies.owed, list(watch.replies.waiting[EXECUTION]))


def test_the_end_makes_the_reply_owed_with_the_result() -> None:
    watch = watch_of(
        requested(), ASKED, started(1, 1, WORKER_1), succeeded(1, 2, RESULT, WORKER_1),
        execution_succeeded(1, 2, RESULT, WORKER_1),
    )  # fmt: skip
    owed = watch.replies.owed[EXECUTION]
    assert owed.reply is not None
    assert ("succeeded", RESULT, 1, True) == (
        owed.reply.status, owed.reply.result, owed.reply.attempts, watch.replies.news
    )  # fmt: skip
    assert [ASKED] == list(owed.requests.values())


def test_a_cancelled_execution_is_owed_a_cancelled_reply() -> None:
    watch = watch_of(requested(), ASKED, cancelled(1, 5, "not needed"))
    reply = watch.replies.owed[EXECUTION].reply
    assert reply is not None
    assert ("cancelled", "Cancelled") == (reply.status, reply.error.type if reply.error else None)


def test_reply_sent_settles_it_and_nothing_is_kept() -> None:
    ended = (requested(), ASKED, execution_succeeded(1, 2, RESULT, WORKER_1))
    watch = watch_of(*ended, reply_sent(ASKED, True, at(3), WORKER_1))
    assert ({}, {}) == (watch.replies.owed, watch.replies.waiting)


def test_a_request_after_the_end_is_owed_with_the_end_still_to_read() -> None:
    """A duplicate trigger of an execution that already ended: its end is read from the log."""
    watch = watch_of(requested(), execution_succeeded(1, 2, RESULT, WORKER_1), ASKED)
    assert [EXECUTION] == watch.replies.needs_end()


def test_the_same_address_asks_once_another_asks_again() -> None:
    """A redelivered trigger records the same request id; another address is another reply."""
    again = reply_requested(EXECUTION, "billing.replies", "order-17", at(9), WORKER_1)
    other = reply_requested(EXECUTION, "billing.replies", "order-18", at(9), WORKER_1)
    assert again.event_id == ASKED.event_id != other.event_id


def test_what_is_owed_and_waiting_survives_a_checkpoint() -> None:
    """A take-over sends what is owed, and owes what was waiting, as its predecessor would."""
    second = "1" * 32
    asked_too = reply_requested(second, "other.replies", None, at(0), WORKER_1)
    before = watch_of(
        requested(), ASKED, execution_succeeded(1, 2, RESULT, WORKER_1),
        requested(0, second), asked_too,
    )  # fmt: skip
    body = checkpoint.take(before, 7, at(10), WORKER_1)
    after = Watch(Vigil(10.0), KeyWindow(86_400.0))
    checkpoint.restore(after, checkpoint.read(body), lambda _: NOW)
    assert before.replies.owed == after.replies.owed
    assert before.replies.waiting == after.replies.waiting
