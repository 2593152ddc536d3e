"""A cancel's claim, as the supervisor keeps it (``engine.watch``; workers: ``test_claims_rules``).

The supervisor forgets an execution once a cancel has ended it, whether or not a
terminal event says so.
"""

from __future__ import annotations

from datetime import timedelta

from ricochet.engine.claims import is_claim
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


def test_starts_and_cancels_claim_attempts_and_nothing_else_does() -> None:
    raws = [
        e.model_dump(mode="json")
        for e in (started(1, 1), cancelled(1, 2), cancel_requested(2, 2), failed(1, 2))
    ]

    assert [True, True, True, False] == [is_claim(raw) for raw in raws]


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
