"""What the supervisor decides for a lost worker (``engine.recovery``).

Given an execution's events, when its attempt's worker is lost, then the
events to record, the retry to publish and whether it is poison.
"""

from __future__ import annotations

from ricochet.contracts import Event, FailureCause, RetryPolicy
from ricochet.engine import fold
from ricochet.engine.recovery import judge_loss, looks_poisoned, scheduled_retry, work_of
from tests.unit import builders as b

SUPERVISOR = "supervisor-1"
WINDOW_S = 3.0


def test_a_lost_attempt_with_retries_left_fails_and_schedules_the_retry() -> None:
    state = fold([b.requested(0), b.started(1, 1)])

    loss = judge_loss(state, 1, b.WORKER_1, WINDOW_S, b.at(5), SUPERVISOR)

    assert loss is not None
    assert ["attempt_failed.v1", "retry_scheduled.v1"] == [e.type for e in loss.events]
    assert loss.retry is not None
    assert 2 == loss.retry.next_attempt
    assert (False, FailureCause.WORKER_LOST) == (loss.poison, loss.events[0].cause)  # type: ignore[union-attr]


def test_the_loss_message_names_the_worker_and_the_window() -> None:
    state = fold([b.requested(0), b.started(1, 1)])

    loss = judge_loss(state, 1, b.WORKER_1, WINDOW_S, b.at(5), SUPERVISOR)

    assert loss is not None
    message = loss.events[0].error.message  # type: ignore[union-attr]
    assert f"worker {b.WORKER_1} stopped vouching for attempt 1" in message
    assert "for 3 s" in message


def test_a_retries_0_attempt_lost_once_ends_the_execution_and_is_not_poison() -> None:
    """At most once: no retry; one loss says nothing about the message itself."""
    once = RetryPolicy()
    state = fold([b.requested(0), b.started(1, 1, policy=once)])

    loss = judge_loss(state, 1, b.WORKER_1, WINDOW_S, b.at(5), SUPERVISOR)

    assert loss is not None
    assert (None, False) == (loss.retry, loss.poison)
    assert "execution_failed.v1" == loss.events[-1].type


def test_every_attempt_lost_is_poison() -> None:
    """Given two attempts that both lost their worker, the last loss parks the work."""
    first_lost = b.failed(1, 4, worker=None, cause=FailureCause.WORKER_LOST)
    events: list[Event] = [b.requested(0), b.started(1, 1), first_lost, b.retry_scheduled(1, 4, 10)]
    events += [b.started(2, 15), b.failed(2, 20, None, FailureCause.WORKER_LOST)]
    events += [b.retry_scheduled(2, 20, 20), b.started(3, 41)]
    state = fold(events)

    loss = judge_loss(state, 3, b.WORKER_2, WINDOW_S, b.at(50), SUPERVISOR)

    assert loss is not None
    assert (None, True) == (loss.retry, loss.poison)
    assert looks_poisoned(loss.after)


def test_an_attempt_that_already_ended_is_not_lost() -> None:
    """The worker's outcome came first: the loss is refused (first outcome wins)."""
    state = fold([b.requested(0), b.started(1, 1), b.succeeded(1, 2), b.execution_succeeded(1, 2)])

    assert judge_loss(state, 1, b.WORKER_1, WINDOW_S, b.at(5), SUPERVISOR) is None


def test_the_work_message_is_rebuilt_from_the_request() -> None:
    work = work_of(fold([b.requested(0)]))

    assert work is not None
    assert (b.EXECUTION, b.TARGET, (42,), {"currency": "EUR"}) == (
        work.execution_id,
        work.target,
        work.args,
        work.kwargs,
    )


def test_scheduled_retry_finds_the_retry_among_events() -> None:
    retry = b.retry_scheduled(1, 4, 10)

    assert retry == scheduled_retry((b.failed(1, 4), retry))
    assert scheduled_retry((b.succeeded(1, 2),)) is None
