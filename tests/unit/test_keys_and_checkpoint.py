"""The key window and the supervisor's checkpoint, given events, when, then.

Pure: times are data (``T0`` plus seconds), so the window is tested without waiting.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ricochet.contracts import ExecutionRequested
from ricochet.engine.keys import (
    BUCKETS,
    IDEMPOTENCY_NAMESPACE,
    KeyVerdict,
    KeyWindow,
    execution_id_for_key,
    judge_key,
    key_digest,
    message_digest,
    request_digest,
    trigger_digest,
)
from ricochet.engine.state import Status
from ricochet.engine.vigil import Attendance, Vigil, take_over_grace, vouched_since
from ricochet.engine.watch import ENDED_MEMORY, Watch
from ricochet.errors import UnreadableCheckpoint
from ricochet.workers.supervision import checkpoint
from ricochet.workers.supervision.checkpoint import Cadence
from tests.unit.builders import (
    EXECUTION,
    T0,
    at,
    failed,
    requested,
    retry_scheduled,
    started,
)

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


def trigger_request(execution_id: str, source: str = "trigger") -> ExecutionRequested:
    update = {"source": source, "idempotency_key": None}
    return requested(0, execution_id).model_copy(update=update)


def test_the_watch_learns_message_ids_from_unkeyed_trigger_requests() -> None:
    """An unkeyed trigger's request whose id was derived from its message id fills that
    digest; a random id, or a request from elsewhere with such an id, fills nothing."""
    seen = watch()
    digest = message_digest("t.ok", "celery-1")
    seen.note(trigger_request(f"{digest:032x}"), 1.0)
    seen.note(trigger_request(uuid.uuid4().hex), 1.0)
    other = message_digest("t.ok", "celery-2")
    seen.note(trigger_request(f"{other:032x}", source="api"), 1.0)
    assert seen.used(digest, keyed=False)
    assert [digest] == list(seen.message_ids)
    assert 0 == len(seen.keys), "message ids stay out of the key window (days long)"


def test_message_ids_are_bounded_and_an_id_still_live_or_lately_ended_is_known() -> None:
    """Past ``MESSAGE_IDS`` later ids, a message id is still known while its execution is
    live (as after a take-over from a checkpoint, which keeps no ids) or lately ended."""
    seen = watch()
    digest = message_digest("t.ok", "celery-1")
    seen.note(trigger_request(f"{digest:032x}"), 1.0)
    seen.message_ids.clear()  # as a checkpoint restores it: live executions, no ids
    assert seen.used(digest, keyed=False)
    seen.forget(f"{digest:032x}")
    assert seen.used(digest, keyed=False)
    for n in range(ENDED_MEMORY):
        seen.ended.add(f"{n:032x}", None)
    assert not seen.used(digest, keyed=False)


def test_a_trigger_is_judged_by_its_key_then_its_message_id_then_not_at_all() -> None:
    assert key_digest("k") == trigger_digest("k", "t.ok", "m-1")
    assert message_digest("t.ok", "m-1") == trigger_digest(None, "t.ok", "m-1")
    assert trigger_digest(None, "t.ok", None) is None
    assert trigger_digest(None, "t.ok", "") is None


@given(st.text(max_size=50), st.text(max_size=50))
def test_a_message_id_never_reads_as_an_explicit_key(key: str, message_id: str) -> None:
    """Namespaces of their own: equal text as a key and as a message id, different ids;
    the same message id for two targets, different ids."""
    assert key_digest(key) != message_digest("t.ok", key)
    assert message_digest("t.a", message_id) != message_digest("t.b", message_id)
    assert uuid.UUID(int=message_digest("t.ok", message_id)).version == 5


def test_only_a_name_based_trigger_id_holds_a_digest() -> None:
    digest = message_digest("t.ok", "m")
    assert digest == request_digest(None, "trigger", f"{digest:032x}")
    for execution_id in (uuid.uuid4().hex, f"0x{digest:030x}", "z" * 32, f"{digest:032X}", 7):
        assert request_digest(None, "trigger", execution_id) is None
    assert key_digest("k") == request_digest("k", "api", "anything")


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
    seen.ended.add("f" * 32, None)
    return seen


def test_a_checkpoint_restores_what_the_watch_held() -> None:
    """Given a busy watch, when it is checkpointed and restored into a fresh one, then
    the live states, endings, schedulers, recoveries and keys are all the same."""
    before = busy_watch()
    body = checkpoint.take(before, offset=41, at=at(9), worker="w:1")

    loaded = checkpoint.read(body)
    after = watch()
    checkpoint.restore(after, loaded, lambda started_at: 50.0)

    assert 41 == loaded.offset
    assert list(before.states()) == list(after.states())
    assert list(before.ended) == list(after.ended)
    assert before.live[EXECUTION].scheduled_by == after.live[EXECUTION].scheduled_by
    assert before.recovered == after.recovered
    assert key_digest("k-1") in after.keys


def test_restored_running_attempts_are_vouched_for_from_their_start() -> None:
    """The new supervisor asks when each open attempt counts as vouched for, given the
    time it started as written on the log."""
    before = busy_watch()
    after = watch()
    asked: list[str | None] = []

    def vouched_at(started_at: str | None) -> float:
        asked.append(started_at)
        return 50.0

    checkpoint.restore(after, checkpoint.read(checkpoint.take(before, 7, at(9), "w")), vouched_at)
    running = [s for s in after.states() if s.status is Status.RUNNING]
    assert 1 == len(running)
    assert {(running[0].execution_id, 1): 50.0} == after.vigil.vouched
    assert [None, at(4).isoformat().replace("+00:00", "Z")] == asked


def test_keys_survive_a_checkpoint_written_under_another_window() -> None:
    before = watch(window_s=DAY)
    before.note(keyed_request("wide"), 1.0)
    after = watch(window_s=7 * DAY)
    checkpoint.restore(
        after, checkpoint.read(checkpoint.take(before, 1, at(1), "w")), lambda a: 1.0
    )
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


def test_a_retry_is_recovered_once_when_overdue_beyond_the_bound() -> None:
    """Whoever scheduled it may be alive: a copy of a retry that did arrive never runs
    twice (the start claim decides), so only the bound and earlier recoveries count."""
    seen = busy_watch()
    seen.recovered.clear()
    (waiting,) = [s for s in seen.states() if s.status is Status.RETRY_SCHEDULED]
    assert waiting.next_due_at is not None
    bound = timedelta(seconds=10)
    late = waiting.next_due_at + timedelta(seconds=11)
    assert [waiting] == list(seen.lost_retries(late, bound))
    early = waiting.next_due_at + timedelta(seconds=9)
    assert [] == list(seen.lost_retries(early, bound))
    seen.recovered.add((EXECUTION, 2))
    assert [] == list(seen.lost_retries(late, bound))


@pytest.mark.parametrize("key", ["", "order-1", "ключ", "x" * 1000, "\x00"])
def test_a_key_digest_is_its_uuid5(key: str) -> None:
    """Other languages compute a key's execution id as uuid5(namespace, key): so do we."""
    expected = uuid.uuid5(IDEMPOTENCY_NAMESPACE, key)
    assert expected.int == key_digest(key)
    assert expected.hex == execution_id_for_key(key)


def test_a_dead_workers_attempt_is_judged_a_window_after_its_start() -> None:
    """Taking over at t=100 (window 3 s, grace 1.5 s): an attempt that started 1 s ago
    counts from its start; one that started an hour ago gets the grace, not zero."""
    assert 99.0 == vouched_since(100.0, age_s=1.0, window_s=3.0, grace_s=1.5)
    assert 98.5 == vouched_since(100.0, age_s=3600.0, window_s=3.0, grace_s=1.5)
    assert 100.0 == vouched_since(100.0, age_s=-5.0, window_s=3.0, grace_s=1.5)


def test_the_take_over_grace_is_a_few_heartbeats_and_never_the_whole_window() -> None:
    assert 1.5 == take_over_grace(heartbeat_s=0.5, window_s=3.0)
    assert 5.0 == take_over_grace(heartbeat_s=1.0, window_s=10.0)
    assert 3.0 == take_over_grace(heartbeat_s=1.0, window_s=3.0)


def test_checkpoints_come_as_often_as_the_log_read_since_is_worth_it() -> None:
    """A checkpoint is due once the offset moved and the log read since the last is at
    least a quarter of that checkpoint's size."""
    cadence = Cadence()
    assert not cadence.due(None)
    assert cadence.due(5)
    cadence.written(5, size=4_000)
    assert not cadence.due(5)
    cadence.read(999)
    assert not cadence.due(9)
    cadence.read(1)
    assert cadence.due(9)


def test_a_request_never_started_is_an_orphan_after_the_bound_and_offered_once() -> None:
    """Given a request seen at t=10 and one that started, when the bound of 60 s has passed,
    then only the one never started is offered for dispatch, and only once."""
    seen = watch()
    seen.note(requested(0), 10.0)
    other = requested(0, "0" * 32)
    seen.note(other, 10.0)
    seen.note(started(1, 1, execution_id=other.execution_id), 11.0)

    assert [] == list(seen.orphans(now=69.0, after_s=60.0))
    orphans = list(seen.orphans(now=70.0, after_s=60.0))
    assert [EXECUTION] == [state.execution_id for state in orphans]
    assert [] == list(seen.orphans(now=200.0, after_s=60.0))


def test_after_a_gap_a_worker_heard_before_gets_time_to_reconnect() -> None:
    """Heartbeats stop at t=10 (the broker restarts) and resume at t=20 from worker a only.
    Worker b's attempts cannot be judged until b is heard again, or until its longest
    reconnect pause plus a loss window have passed since the gap ended."""
    attendance = Attendance(heartbeat_s=0.5, window_s=3.0, reconnect_s=6.0)
    attendance.heard("a", 9.9)
    attendance.heard("b", 10.0)

    assert attendance.heard("a", 20.0), "the first heartbeat after a gap says so"
    assert not attendance.may_judge("b", 25.0)
    assert attendance.may_judge("a", 25.0)
    assert attendance.may_judge("b", 29.0)

    attendance.heard("b", 26.0)
    assert attendance.may_judge("b", 26.5)


def test_without_a_gap_anyone_may_be_judged() -> None:
    attendance = Attendance(heartbeat_s=0.5, window_s=3.0, reconnect_s=6.0)
    for now in (1.0, 1.5, 2.0):
        assert not attendance.heard("a", now) or now == 1.0
    assert attendance.may_judge("b", 2.0)


def test_a_take_over_right_after_an_outage_waits_for_workers_it_never_heard() -> None:
    """A supervisor that takes over as its own connection comes back has heard nobody:
    every worker gets time to reconnect before its attempts are judged."""
    attendance = Attendance(heartbeat_s=0.5, window_s=3.0, reconnect_s=6.0)
    attendance.outage(ended=100.0)
    attendance.heard("a", 100.2)
    assert attendance.may_judge("a", 101.0)
    assert not attendance.may_judge("never-heard", 105.0)
    assert attendance.may_judge("never-heard", 109.0)


def test_quiet_workers_are_forgotten() -> None:
    attendance = Attendance(heartbeat_s=0.5, window_s=3.0, reconnect_s=6.0)
    attendance.heard("gone", 1.0)
    attendance.heard("here", 10.5)
    attendance.forget_quiet(now=11.0, after_windows=3)
    assert ["here"] == list(attendance.last_seen)


@pytest.mark.parametrize(
    ("used", "deciding", "expected"),
    [
        (False, False, KeyVerdict.START),
        (False, True, KeyVerdict.WAIT),
        (True, False, KeyVerdict.DUPLICATE),
        (True, True, KeyVerdict.DUPLICATE),
    ],
)
def test_one_execution_per_key_however_copies_race(
    used: bool, deciding: bool, expected: KeyVerdict
) -> None:
    """Given whether the key is in the window and whether a copy is being started,
    a trigger starts, waits for that start, or is a duplicate."""
    assert expected == judge_key(used, deciding)
