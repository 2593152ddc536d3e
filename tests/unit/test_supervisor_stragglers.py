"""The supervisor forgets ended executions, and a late straggler cannot bring one back.

``Supervisor.note`` is pure bookkeeping (projection and vigil), so it is tested
here without a broker; its connection and publishers are never touched.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from contracts import FailureCause
from engine import Status
from tests.unit.builders import (
    EXECUTION,
    execution_failed,
    execution_succeeded,
    failed,
    requested,
    retry_scheduled,
    started,
)
from workers import supervisor as supervisor_module
from workers.settings import Settings
from workers.settle import utc_now
from workers.supervisor import Supervisor

OTHER = "0" * 32
UNUSED: Any = None


def bare_supervisor() -> Supervisor:
    return Supervisor(Settings(), UNUSED, UNUSED, UNUSED, UNUSED, utc_now)


def test_a_zombie_retry_after_the_end_is_forgotten_does_not_revive_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor_module, "ENDED_MEMORY", 1)
    supervisor = bare_supervisor()
    for event in (
        requested(0),
        started(1, 1),
        failed(1, 2, cause=FailureCause.WORKER_LOST),
        execution_failed(1, 2),
    ):
        supervisor.note(event)
    supervisor.note(requested(3, OTHER))
    supervisor.note(execution_succeeded(1, 4).model_copy(update={"execution_id": OTHER}))
    assert EXECUTION not in supervisor._ended, "the memory is full: the first end is forgotten"

    supervisor.note(retry_scheduled(1, 5, delay_s=10))  # the zombie's late decision

    assert supervisor.projection.get(EXECUTION) is None
    assert not supervisor.vigil.vouched


def test_a_start_of_an_unknown_execution_is_watched() -> None:
    """A log that begins after the request (retention) still has its running attempts judged."""
    supervisor = bare_supervisor()
    supervisor.note(started(1, 1))
    state = supervisor.projection.get(EXECUTION)
    assert state is not None
    assert state.status is Status.RUNNING
    assert (EXECUTION, 1) in supervisor.vigil.vouched


def test_supervisor_keeps_no_state_for_an_unknown_execution_ending() -> None:
    supervisor = bare_supervisor()
    supervisor.note(execution_succeeded(1, 4))
    assert supervisor.projection.executions == {}
    assert cast(Any, supervisor)._ended == {}
