"""The supervisor's watch: it forgets ended executions, a late straggler cannot bring
one back, and what it keeps goes through a checkpoint unchanged.

``Watch`` is pure bookkeeping (projection, vigil, keys), tested without a broker.
"""

from __future__ import annotations

from ricochet.contracts import Event, FailureCause
from ricochet.engine import Status
from ricochet.engine.keys import KeyWindow
from ricochet.engine.recent import Recent
from ricochet.engine.vigil import Vigil
from ricochet.engine.watch import Watch
from tests.unit.builders import (
    EXECUTION,
    execution_failed,
    execution_succeeded,
    failed,
    requested,
    retry_scheduled,
    started,
)

OTHER = "0" * 32
NOW = 100.0


class Supervisor:
    """The watch as the supervisor drives it: one monotonic time for every event."""

    def __init__(self, ended_memory: int = 2_000) -> None:
        self.watch = Watch(Vigil(10.0), KeyWindow(86_400.0), ended=Recent(ended_memory))
        self.vigil = self.watch.vigil

    def note(self, event: Event) -> None:
        self.watch.note(event, NOW)


def bare_supervisor(ended_memory: int = 2_000) -> Supervisor:
    return Supervisor(ended_memory)


def test_a_zombie_retry_after_the_end_is_forgotten_does_not_revive_it() -> None:
    supervisor = bare_supervisor(ended_memory=1)
    for event in (
        requested(0),
        started(1, 1),
        failed(1, 2, cause=FailureCause.WORKER_LOST),
        execution_failed(1, 2),
    ):
        supervisor.note(event)
    supervisor.note(requested(3, OTHER))
    supervisor.note(execution_succeeded(1, 4).model_copy(update={"execution_id": OTHER}))
    assert EXECUTION not in supervisor.watch.ended, "the memory is full: the first end is forgotten"

    supervisor.note(retry_scheduled(1, 5, delay_s=10))  # the zombie's late decision

    assert supervisor.watch.state_of(EXECUTION) is None
    assert not supervisor.vigil.vouched


def test_a_start_of_an_unknown_execution_is_watched() -> None:
    """A log that begins after the request (retention) still has its running attempts judged."""
    supervisor = bare_supervisor()
    supervisor.note(started(1, 1))
    state = supervisor.watch.state_of(EXECUTION)
    assert state is not None
    assert state.status is Status.RUNNING
    assert (EXECUTION, 1) in supervisor.vigil.vouched


def test_supervisor_keeps_no_state_for_an_unknown_execution_ending() -> None:
    supervisor = bare_supervisor()
    supervisor.note(execution_succeeded(1, 4))
    assert {} == supervisor.watch.live
    assert [] == list(supervisor.watch.ended)


def test_an_event_is_validated_only_when_a_decision_needs_it() -> None:
    """Given a request with a payload no reader accepts (a bad ``attempt`` type inside is
    caught at once, a bad payload later), the watch still follows the execution, and
    the fold leaves the invalid event out and counts it."""
    seen = bare_supervisor().watch
    bad_request = {**requested(0).model_dump(mode="json"), "kwargs": "not an object"}
    seen.note_raw(bad_request, NOW)
    seen.note_raw(started(1, 1).model_dump(mode="json"), NOW)
    assert (EXECUTION, 1) in seen.vigil.vouched
    state = seen.state_of(EXECUTION)
    assert state is not None
    assert Status.RUNNING == state.status
    assert 1 == seen.malformed


def test_events_without_the_fields_the_watch_reads_are_counted_and_left_out() -> None:
    seen = bare_supervisor().watch
    for raw in (
        {},
        {"type": "attempt_started.v2"},
        {**started(1, 1).model_dump(mode="json"), "attempt": "1"},
    ):
        seen.note_raw(raw, NOW)
    assert 3 == seen.malformed
    assert {} == seen.live


def test_a_straggling_start_does_not_hide_a_waiting_retry() -> None:
    """A duplicate start of attempt 1 after attempt 2 was scheduled keeps the retry watched."""
    seen = bare_supervisor().watch
    for event in (requested(0), started(1, 1), failed(1, 2), retry_scheduled(1, 2, delay_s=10)):
        seen.note(event, NOW)
    seen.note(started(1, 1), NOW)
    assert seen.live[EXECUTION].due_at is not None


def test_a_time_that_overflows_in_utc_is_no_key_time_and_raises_nothing() -> None:
    """A forged request at the calendar's edge is still followed; its key just has no time."""
    seen = bare_supervisor().watch
    raw = {**requested(0).model_dump(mode="json"), "at": "0001-01-01T00:00:00+01:00"}
    seen.note_raw(raw, NOW)
    assert EXECUTION in seen.live
    assert 0 == len(seen.keys)


def test_only_executions_awaiting_a_retry_are_looked_at_for_lost_retries() -> None:
    """A retry recorded puts its execution on the short list; its start or its end takes
    it off, so the judge never walks a large backlog of pending executions."""
    seen = bare_supervisor().watch
    for event in (requested(0), started(1, 1), failed(1, 2), retry_scheduled(1, 2, delay_s=10)):
        seen.note(event, NOW)
    assert {EXECUTION} == seen.awaiting_retry
    seen.note(started(2, 12), NOW)
    assert set() == seen.awaiting_retry
    seen.note(requested(0, OTHER), NOW)
    assert set() == seen.awaiting_retry
