"""The key window and the supervisor's checkpoint, given events, when, then.

Pure: times are data (``T0`` plus seconds), so the window is tested without waiting.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts import ExecutionRequested
from engine.keys import BUCKETS, KeyWindow, execution_id_for_key, key_digest
from engine.state import Status
from engine.vigil import Vigil
from engine.watch import Watch
from tests.unit.builders import (
    EXECUTION,
    T0,
    WORKER_2,
    at,
    failed,
    requested,
    retry_scheduled,
    started,
)
from workers import checkpoint
from workers.checkpoint import UnreadableCheckpoint

DAY = 86_400.0


def keyed_request(key: str, seconds: float = 0) -> ExecutionRequested:
    return requested(seconds, execution_id_for_key(key)).model_copy(update={"idempotency_key": key})


def watch(window_s: float = DAY) -> Watch:
    return Watch(Vigil(10.0), KeyWindow(window_s))


def test_a_key_is_remembered_inside_the_window_and_forgotten_after_it() -> None:
    """Given a key used at T0, when time passes, it is known until the window (plus at
    most one bucket) has gone by, and then a re-use would start a new execution."""
    keys = KeyWindow(DAY)
    keys.add(key_digest("order-1"), T0.timestamp())

    keys.expire((T0 + timedelta(seconds=DAY - 1)).timestamp())
    assert key_digest("order-1") in keys
    keys.expire((T0 + timedelta(seconds=DAY + DAY / BUCKETS + 1)).timestamp())
    assert key_digest("order-1") not in keys
    assert 0 == len(keys)


def test_expiry_drops_only_old_keys() -> None:
    keys = KeyWindow(DAY)
    keys.add(key_digest("old"), T0.timestamp())
    keys.add(key_digest("new"), (T0 + timedelta(seconds=DAY)).timestamp())
    dropped = keys.expire((T0 + timedelta(seconds=2 * DAY)).timestamp())
    assert 1 == dropped
    assert key_digest("new") in keys


def test_the_watch_learns_keys_from_requests_on_the_log() -> None:
    seen = watch()
    seen.note(keyed_request("pay-7"), 1.0)
    assert key_digest("pay-7") in seen.keys
    assert key_digest("pay-8") not in seen.keys


def test_an_ended_execution_keeps_its_key() -> None:
    """Given a keyed execution that ended, the key still blocks a second start."""
    seen = watch()
    request = keyed_request("once")
    seen.note(request, 1.0)
    seen.forget(request.execution_id)
    assert key_digest("once") in seen.keys
    assert {} == seen.live


def busy_watch() -> Watch:
    """A running attempt, a retry waiting, recent endings, keys: everything a watch holds."""
    seen = watch()
    for event in (requested(0), started(1, 1), failed(1, 2), retry_scheduled(1, 2, delay_s=10)):
        seen.note(event, 5.0)
    other = keyed_request("k-1", 3)
    for event in (other, started(1, 4, execution_id=other.execution_id)):
        seen.note(event, 5.0)
    seen.recovered.add((EXECUTION, 2))
    seen.ended["f" * 32] = None
    return seen


def test_a_checkpoint_restores_what_the_watch_held() -> None:
    """Given a busy watch, when it is checkpointed and restored into a fresh one, then
    the live states, endings, schedulers, recoveries and keys are all the same."""
    before = busy_watch()
    body = checkpoint.take(before, offset=41, at=at(9), worker="w:1")

    loaded = checkpoint.read(body)
    after = watch()
    checkpoint.restore(after, loaded, now=50.0)

    assert 41 == loaded.offset
    assert list(before.states()) == list(after.states())
    assert list(before.ended) == list(after.ended)
    assert before.live[EXECUTION].scheduled_by == after.live[EXECUTION].scheduled_by
    assert before.recovered == after.recovered
    assert key_digest("k-1") in after.keys


def test_restored_running_attempts_get_a_full_window() -> None:
    """The new supervisor vouches for the running attempts it restored, as of its take-over."""
    before = busy_watch()
    after = watch()
    checkpoint.restore(after, checkpoint.read(checkpoint.take(before, 7, at(9), "w")), 50.0)
    running = [s for s in after.states() if s.status is Status.RUNNING]
    assert 1 == len(running)
    assert {(running[0].execution_id, 1): 50.0} == after.vigil.vouched


def test_keys_survive_a_checkpoint_written_under_another_window() -> None:
    before = watch(window_s=DAY)
    before.note(keyed_request("wide"), 1.0)
    after = watch(window_s=7 * DAY)
    checkpoint.restore(after, checkpoint.read(checkpoint.take(before, 1, at(1), "w")), 1.0)
    assert key_digest("wide") in after.keys


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b'{"type": "supervisor_checkpoint.v9"}',
        b'{"type":"supervisor_checkpoint.v1","offset":1,"at":"0001-01-01T00:00:00+01:00",'
        b'"worker":"w","executions":[],"key_width_s":1}',
        b"[" * 5000,
    ],
)
def test_an_unreadable_checkpoint_is_refused_never_half_trusted(body: bytes) -> None:
    with pytest.raises(UnreadableCheckpoint):
        checkpoint.read(body)


def test_a_retry_is_recovered_only_when_overdue_and_its_scheduler_is_silent() -> None:
    seen = busy_watch()
    seen.recovered.clear()
    (waiting,) = [s for s in seen.states() if s.status is Status.RETRY_SCHEDULED]
    assert waiting.next_due_at is not None
    late = waiting.next_due_at + timedelta(seconds=61)
    bound = timedelta(seconds=60)
    assert [waiting] == list(seen.lost_retries(late, bound, alive=lambda worker: False))
    assert [] == list(seen.lost_retries(late, bound, alive=lambda worker: True))
    early = waiting.next_due_at + timedelta(seconds=59)
    assert [] == list(seen.lost_retries(early, bound, alive=lambda worker: False))
    seen.recovered.add((EXECUTION, 2))
    assert [] == list(seen.lost_retries(late, bound, alive=lambda worker: False))
    assert WORKER_2 != seen.live[EXECUTION].scheduled_by
