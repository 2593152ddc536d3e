"""A cancel's claim, as workers and the supervisor keep it (``engine.claims``, ``engine.watch``).

A cancel claims its attempt earlier than any start could: while a retry waits in
its delay queue, or while the attempt before it runs. Workers hold cancels past the
claim horizon, and a copy counts as covered only if the memory began before the
earliest cancel it must obey. The supervisor forgets an execution once a cancel has
ended it, whether or not a terminal event says so.
"""

from __future__ import annotations

from datetime import timedelta

from ricochet.engine.claims import (
    CLOCK_SKEW,
    FirstStarts,
    cancel_floor,
    cancels_covered,
    is_cancel,
    is_claim,
)
from ricochet.engine.keys import KeyWindow
from ricochet.engine.vigil import Vigil
from ricochet.engine.watch import Watch
from ricochet.workers.supervision import checkpoint
from tests.unit.builders import (
    EXECUTION,
    at,
    cancel_requested,
    cancelled,
    failed,
    requested,
    retry_scheduled,
    started,
)

HORIZON_S = 120.0
ATTEMPT, OTHER_ATTEMPT = 11, 12
CANCEL, START, LATE_START = 101, 102, 103


def test_a_cancel_is_held_past_the_horizon_and_beats_a_later_start() -> None:
    """Given a cancel of attempt 2 read at t=0, when its retry's message comes ten minutes
    later (its delay), then the memory still says the cancel claimed it first."""
    firsts = FirstStarts(HORIZON_S)
    assert firsts.note(ATTEMPT, CANCEL, now=0.0, hold=True)
    for minute in range(1, 11):  # other starts roll the buckets past the horizon
        firsts.note(1000 + minute, START, now=60.0 * minute)

    assert CANCEL == firsts.first(ATTEMPT)
    assert not firsts.note(ATTEMPT, LATE_START, now=600.0)


def test_a_start_held_nowhere_past_the_horizon_is_forgotten() -> None:
    """The contrast: an ordinary start is kept for the horizon only (memory stays flat)."""
    firsts = FirstStarts(HORIZON_S)
    firsts.note(ATTEMPT, START, now=0.0)
    for minute in range(1, 11):
        firsts.note(1000 + minute, START, now=60.0 * minute)

    assert firsts.first(ATTEMPT) is None


def test_a_cancel_after_a_start_of_its_attempt_lost_and_is_not_held() -> None:
    firsts = FirstStarts(HORIZON_S)
    firsts.note(ATTEMPT, START, now=0.0)

    assert not firsts.note(ATTEMPT, CANCEL, now=1.0, hold=True)
    assert ({}, START) == (dict(firsts.held), firsts.first(ATTEMPT))


def test_held_cancels_are_bounded_and_say_when_they_forgot_one() -> None:
    firsts = FirstStarts(HORIZON_S, hold_capacity=2)
    for attempt in (1, 2, 3):
        firsts.note(attempt, CANCEL, now=0.0, hold=True)

    assert ([2, 3], 1) == (list(firsts.held), firsts.dropped_holds)
    assert firsts.first(1) is None


def test_the_earliest_cancel_of_a_first_attempt_is_its_request() -> None:
    requested_ms = round(at(5).timestamp() * 1000)

    assert at(5) == cancel_floor(1, requested_ms, published_at=at(9))


def test_the_earliest_cancel_a_retry_must_obey_is_its_publish() -> None:
    """One recorded before was seen by whoever scheduled the retry, who then scheduled none."""
    requested_ms = round(at(5).timestamp() * 1000)

    assert at(300) == cancel_floor(2, requested_ms, published_at=at(300))


def test_cancels_are_covered_only_by_a_memory_older_than_their_floor_less_the_skew() -> None:
    since = at(100)

    assert cancels_covered(since + CLOCK_SKEW, since)
    assert not cancels_covered(since + CLOCK_SKEW - timedelta(seconds=1), since)
    assert not cancels_covered(None, since)
    assert not cancels_covered(at(500), None)


def test_starts_and_cancels_claim_attempts_and_nothing_else_does() -> None:
    raws = [
        e.model_dump(mode="json")
        for e in (started(1, 1), cancelled(1, 2), cancel_requested(2, 2), failed(1, 2))
    ]

    assert [True, True, True, False] == [is_claim(raw) for raw in raws]
    assert [False, True, True, False] == [is_cancel(raw) for raw in raws]


def fresh_watch() -> Watch:
    return Watch(Vigil(10.0), KeyWindow(86_400.0))


def test_the_supervisor_forgets_a_pending_execution_once_cancelled() -> None:
    """No orphan re-dispatch: the execution is no longer live, nor waiting to start."""
    seen = fresh_watch()
    for event in (requested(0), cancelled(1, 5)):
        seen.note(event, 100.0)

    assert (EXECUTION not in seen.live, EXECUTION in seen.ended) == (True, True)
    assert [] == list(seen.orphans(now=10_000.0, after_s=1.0))


def test_the_supervisor_forgets_a_cancelled_retry_so_it_is_never_republished() -> None:
    seen = fresh_watch()
    for event in (requested(0), started(1, 1), failed(1, 3), retry_scheduled(1, 3, 10)):
        seen.note(event, 100.0)
    seen.note(cancelled(2, 5), 100.0)

    assert [] == list(seen.lost_retries(at(10_000), timedelta(seconds=1)))
    assert set() == seen.awaiting_retry


def test_a_cancel_that_waits_keeps_the_running_attempt_watched_until_it_ends() -> None:
    """A cancel while attempt 1 runs: a lost worker must still be noticed; the attempt's
    failure then ends the execution, with no terminal event to say so."""
    seen = fresh_watch()
    for event in (requested(0), started(1, 1), cancel_requested(2, 2)):
        seen.note(event, 100.0)
    assert (EXECUTION, 1) in seen.vigil.vouched

    seen.note(failed(1, 3), 100.0)
    seen.note(retry_scheduled(1, 3, 10), 100.0)  # from a worker that had not read the cancel

    assert (EXECUTION not in seen.live, set()) == (True, seen.awaiting_retry)
    assert {} == seen.vigil.vouched


def test_a_cancel_that_lost_to_a_start_leaves_the_execution_watched() -> None:
    seen = fresh_watch()
    for event in (requested(0), started(1, 1), failed(1, 3), retry_scheduled(1, 3, 10)):
        seen.note(event, 100.0)
    seen.note(started(2, 13), 100.0)
    seen.note(cancelled(2, 14), 100.0)  # its attempt had started: the cancel lost

    assert EXECUTION in seen.live
    assert (EXECUTION, 2) in seen.vigil.vouched


def test_a_checkpoint_remembers_which_live_executions_have_a_cancel() -> None:
    before = fresh_watch()
    for event in (requested(0), started(1, 1), cancel_requested(2, 2)):
        before.note(event, 100.0)
    after = fresh_watch()

    checkpoint.restore(after, checkpoint.read(checkpoint.take(before, 7, at(9), "w")), lambda _: 1)
    after.note(failed(1, 3), 100.0)

    assert EXECUTION not in after.live
