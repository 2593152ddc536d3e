"""The status timeline: attempts drawn on one time axis, failures beneath them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ricochet.contracts import ErrorInfo, FailureCause
from ricochet.engine import AttemptState, ExecutionState, fold
from ricochet.engine.state import Status
from ricochet.workers.read.timeline import render
from tests.unit import builders as b


class NewStatus(StrEnum):
    """A status the timeline was not written for (as ``cancelled`` will be)."""

    CANCELLED = "cancelled"


T0 = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "tests/integration/tasks.py", line 21, in flaky\n'
    '    raise Boom("not yet")\n'
    "tests.integration.tasks.Boom: not yet\n"
)
BOOM = ErrorInfo(type="tests.integration.tasks.Boom", message="not yet", traceback=TRACEBACK)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def three_attempts() -> ExecutionState:
    """Fails, loses its worker after a 500 ms wait, then succeeds after a 1 s wait."""
    first = AttemptState(1, "worker-a:4242", at(0.05), at(0.25), "failed", error=BOOM)
    second = AttemptState(
        2,
        "worker-b:1717",
        at(0.76),
        at(3.0),
        "failed",
        FailureCause.WORKER_LOST,
        None,
        0.5,
        at(0.75),
    )
    third = AttemptState(
        3, "worker-a:4242", at(4.02), at(4.3), "succeeded", None, None, 1.0, at(4.0)
    )
    return ExecutionState(
        "3f2a9c1e",
        Status.SUCCEEDED,
        "tests.integration.tasks:flaky",
        requested_at=T0,
        attempts=(first, second, third),
        next_attempt=4,
        result={"sent": True},
        ended_at=at(4.3),
    )


def row(text: str, number: int) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"  #{number} |"))


def test_bars_run_left_to_right_in_time_order() -> None:
    """Each attempt's run starts further right on the axis than the attempt before it."""
    text = render(three_attempts())

    starts = [row(text, n).index("█") for n in (1, 2, 3)]

    assert starts[0] < starts[1] < starts[2]
    assert "░" in row(text, 2)
    assert "░" in row(text, 3)


def test_keeps_the_substrings_people_and_scripts_look_for() -> None:
    """Header count, the waits before retries and each failure's error stay in the text."""
    text = render(three_attempts())

    assert "succeeded  (3 attempts)" in text
    assert "waited 500 ms" in text
    assert "waited 1.00 s" in text
    assert "tests.integration.tasks.Boom: not yet" in text
    assert 'result: {"sent":true}' in text
    assert "\x1b[" not in text


def test_header_says_attempt_in_the_singular_for_one() -> None:
    """One attempt is "1 attempt", not "1 attempts"."""
    only = three_attempts().attempts[2]
    state = ExecutionState("e", Status.SUCCEEDED, "t:f", requested_at=T0, attempts=(only,))

    assert "succeeded  (1 attempt)" in render(state)


def test_a_lost_worker_shows_the_cause() -> None:
    """A cause other than a plain exception is named after the outcome."""
    assert "failed [worker_lost]" in row(render(three_attempts()), 2)


def test_traceback_appears_beneath_its_failure() -> None:
    """The error and traceback of attempt 1 sit between its row and attempt 2's."""
    lines = render(three_attempts()).splitlines()
    first = lines.index(row("\n".join(lines), 1))
    second = lines.index(row("\n".join(lines), 2))
    between = "\n".join(lines[first + 1 : second])

    assert "tests.integration.tasks.Boom: not yet" in between
    assert 'raise Boom("not yet")' in between
    assert "Traceback (most recent call last):" in between


def test_long_traceback_keeps_its_last_lines() -> None:
    """Only the tail of a long traceback is shown, with a note of how much was left off."""
    trace = "\n".join(f"line {i}" for i in range(30))
    error = ErrorInfo(type="ValueError", message="bad", traceback=trace)
    attempt = AttemptState(1, "w", at(0), at(1), "failed", error=error)
    text = render(ExecutionState("e", Status.FAILED, "t:f", attempts=(attempt,), error=error))

    assert "line 29" in text
    assert "line 13" not in text
    assert "14 earlier lines" in text
    assert "final error: ValueError: bad" in text


def test_zero_attempts_renders_the_header() -> None:
    """An execution with no attempts, or nothing known at all, still renders."""
    pending = ExecutionState("e", Status.PENDING, "t:f", requested_at=T0)

    assert "pending  (0 attempts)" in render(pending)
    assert "unknown  (0 attempts)" in render(ExecutionState("e"))


def test_running_attempt_has_a_bar_and_no_end() -> None:
    """A running attempt shows at least one cell of run and says it is running."""
    first = three_attempts().attempts[0]
    running = AttemptState(2, "worker-b:1717", at(1.0), delay_before_s=0.5, due_at=at(0.75))
    state = ExecutionState(
        "e", Status.RUNNING, "t:f", requested_at=T0, attempts=(first, running), next_attempt=2
    )
    line = row(render(state), 2)

    assert "█" in line
    assert "running" in line
    assert "worker-b:1717" in line


def test_retry_scheduled_shows_the_next_due_time() -> None:
    """While a retry waits, its due time is drawn and written."""
    first = three_attempts().attempts[0]
    state = ExecutionState(
        "e",
        Status.RETRY_SCHEDULED,
        "t:f",
        requested_at=T0,
        attempts=(first,),
        next_attempt=2,
        next_due_at=at(1.5),
        next_delay_s=1.25,
    )

    assert "due 09:30:01.500" in row(render(state), 2)


def test_missing_times_do_not_crash() -> None:
    """Attempts without start or end times are drawn as unknown, not as errors."""
    attempts = (AttemptState(1), AttemptState(2, ended_at=at(2), outcome="failed"))
    text = render(ExecutionState("e", Status.FAILED, attempts=attempts))

    assert "?" in row(text, 1)
    assert "█" in row(text, 2)


def test_scale_gives_start_and_span() -> None:
    """Under the axis: its start as a clock time and its total span."""
    text = render(three_attempts())

    assert "0 s at 09:30:00.000" in text
    assert "4.30 s" in text


def test_long_result_is_truncated() -> None:
    """A result's repr is cut to about 200 characters."""
    state = ExecutionState("e", Status.SUCCEEDED, "t:f", result="x" * 1000)
    final = render(state).splitlines()[-1]

    assert len(final) < 220
    assert final.endswith("…")


def test_result_is_json_as_submit_prints_it() -> None:
    """Not Python's repr: ``true``/``null`` and double quotes, compact."""
    state = ExecutionState("e", Status.SUCCEEDED, "t:f", result={"ok": True, "none": None})

    assert '  result: {"ok":true,"none":null}' == render(state).splitlines()[-1]


def test_rerun_links_are_shown_both_ways() -> None:
    """A rerun names what it re-runs; the original lists every rerun of it."""
    rerun = ExecutionState("r1", Status.SUCCEEDED, "t:f", rerun_of="o1", requested_at=T0)
    original = ExecutionState("o1", Status.FAILED, "t:f", reruns=("r1", "r2"), requested_at=T0)

    assert "  rerun of o1" in render(rerun).splitlines()
    assert "  rerun as r1, r2" in render(original).splitlines()
    assert "rerun" not in render(three_attempts())


MACHINERY_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/.venv/lib/python3.11/site-packages/ricochet/workers/runtime/runner.py",'
    " line 159, in invoke\n"
    "    result = await _call(task, args, kwargs, pool)\n"
    '  File "tests/integration/tasks.py", line 21, in flaky\n'
    '    raise Boom("not yet")\n'
    "tests.integration.tasks.Boom: not yet\n"
)


def failed_with(traceback: str) -> ExecutionState:
    error = ErrorInfo(type="tests.integration.tasks.Boom", message="not yet", traceback=traceback)
    attempt = AttemptState(1, "w", at(0), at(1), "failed", error=error)
    return ExecutionState("e", Status.FAILED, "t:f", attempts=(attempt,), error=error)


def test_tracebacks_show_the_users_frames_only() -> None:
    """Ricochet's runner frame is counted away; the user's frame and the error stay."""
    lines = render(failed_with(MACHINERY_TRACEBACK)).splitlines()

    assert [
        "         | Traceback (most recent call last):",
        "         |   … 1 frame of Ricochet and asyncio hidden",
        '         |   File "tests/integration/tasks.py", line 21, in flaky',
        '         |     raise Boom("not yet")',
        "         | tests.integration.tasks.Boom: not yet",
    ] == [line for line in lines if line.startswith("         |")]


def test_all_frames_shows_the_traceback_as_recorded() -> None:
    """Every line, Ricochet's frames included, and no tail cut."""
    long = MACHINERY_TRACEBACK + "\n".join(f"  note {i}" for i in range(40))
    text = render(failed_with(long), all_frames=True)

    assert "ricochet/workers/runtime/runner.py" in text
    assert "note 0" in text
    assert "earlier lines" not in text


def test_user_data_cannot_steer_the_terminal() -> None:
    """Target, worker, error and traceback are printed with control characters escaped."""
    error = ErrorInfo(type="E", message="bad\x1b[2J", traceback="line\x1b]0;title\x07")
    attempt = AttemptState(1, "w\x1b[31m", at(0), at(1), "failed", error=error)
    state = ExecutionState("e", Status.FAILED, "t:\x1bf", attempts=(attempt,), error=error)

    text = render(state)

    assert "\x1b" not in text
    assert "E: bad\\x1b[2J" in text


def test_a_status_added_later_renders_by_its_value() -> None:
    """A terminal status this module does not know still shows its name and its error."""
    error = ErrorInfo(type="ricochet.errors.Cancelled", message="by alice")
    state = ExecutionState("e", Status.SUCCEEDED, "t:f", requested_at=T0, error=error)
    cancelled = dataclasses.replace(state, status=NewStatus.CANCELLED)  # type: ignore[arg-type]

    text = render(cancelled)

    assert "t:f  cancelled  (0 attempts)" in text
    assert "  final error: ricochet.errors.Cancelled: by alice" == text.splitlines()[-1]


def test_a_cancel_while_an_attempt_runs_says_what_still_happens() -> None:
    """Given a cancel recorded while attempt 1 runs, the header says attempt 1 finishes
    and nothing runs after it."""
    state = fold([b.requested(0), b.started(1, 1), b.cancel_requested(2, 2, reason="wrong order")])

    text = render(state)

    assert (
        "cancel requested 2026-01-01 00:00:02.000: wrong order; attempt 1 finishes,"
        " nothing runs after it"
    ) in text
