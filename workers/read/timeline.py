"""An execution's attempts drawn on a time axis a person can read at a glance.

One row per attempt: ``░`` for the wait before it, ``█`` for the time it ran,
placed in proportion on one axis from the request to the last known moment.
Each failure's error and its traceback sit beneath its row: the user's own
frames and the tail of them, or every line with ``all_frames``. A result is
shown as JSON, as ``submit --wait`` prints it. Targets, errors, tracebacks and
results are user data, printed only through ``text.printable``. Statuses are
drawn by their value, so a new one renders without a change here.
Pure: a state in, a string out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ricochet.engine import AttemptState, ExecutionState, Status
from ricochet.workers.read.frames import user_frames
from ricochet.workers.read.text import as_json, printable

RUN, WAIT, DUE, UNKNOWN = "█", "░", "◇", "?"
TRACEBACK_LINES = 16
"""Lines of a traceback's tail shown by default: the user's frames of a child's error
and of its parent that re-raised it fit."""
RESULT_CHARS = 200
MIN_COLS = 32
_PAINT = {"succeeded": "32", "failed": "31", "running": "33", "wait": "2", "due": "36"}


def _clock(at: datetime | None) -> str:
    return "--:--:--.---" if at is None else at.strftime("%H:%M:%S.%f")[:-3]


def _stamp(at: datetime | None) -> str:
    return "?" if at is None else at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _paint(text: str, kind: str, color: bool) -> str:
    code = _PAINT.get(kind)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code and text.strip() else text


@dataclass(frozen=True, slots=True)
class _Axis:
    """Maps moments to columns: ``start`` is column 0, ``start + span`` the last."""

    start: datetime | None
    span: float
    cols: int

    def col(self, at: datetime) -> int:
        if self.start is None or self.span <= 0:
            return 0
        offset = (at - self.start).total_seconds() / self.span
        return min(self.cols - 1, max(0, round(offset * (self.cols - 1))))


def _axis(state: ExecutionState, cols: int) -> _Axis:
    moments = [state.requested_at, state.ended_at, state.next_due_at]
    for attempt in state.attempts:
        moments += [attempt.due_at, attempt.started_at, attempt.ended_at]
    known = [m for m in moments if m is not None]
    if not known:
        return _Axis(None, 0.0, cols)
    start = state.requested_at or min(known)
    return _Axis(start, max((max(known) - start).total_seconds(), 0.0), cols)


def _end_of_axis(axis: _Axis) -> datetime | None:
    if axis.start is None:
        return None
    return axis.start + timedelta(seconds=axis.span)


def _outcome(attempt: AttemptState) -> str:
    outcome = attempt.outcome or "running"
    if attempt.cause is not None and attempt.cause.value != "exception":
        outcome += f" [{attempt.cause.value}]"
    return outcome


def _took(attempt: AttemptState) -> str:
    if attempt.started_at is None or attempt.ended_at is None:
        return "…" if attempt.started_at is not None else "?"
    return _seconds((attempt.ended_at - attempt.started_at).total_seconds())


def _cells(axis: _Axis, attempt: AttemptState, waited_from: datetime | None) -> list[str]:
    """The row for one attempt: the wait before it, then at least one cell of run."""
    cells = [" "] * axis.cols
    start = attempt.started_at or attempt.ended_at
    if start is None:
        cells[0] = UNKNOWN
        return cells
    first = axis.col(start)
    if waited_from is not None:
        for c in range(axis.col(waited_from), first):
            cells[c] = WAIT
    end = attempt.ended_at or (_end_of_axis(axis) if attempt.outcome is None else None)
    last = max(first, axis.col(end)) if end is not None else first
    for c in range(first, last + 1):
        cells[c] = RUN
    return cells


def _bar(cells: list[str], kind: str, color: bool) -> str:
    text = "".join(cells)
    run_at = text.find(RUN)
    if run_at < 0:
        return _paint(text, "wait", color)
    wait, run = text[:run_at], text[run_at:]
    return _paint(wait, "wait", color) + _paint(run, kind, color)


def _wait_line(attempt: AttemptState, previous: AttemptState | None) -> str | None:
    if attempt.delay_before_s is None or previous is None:
        return None
    line = f"     ~ waited {_seconds(attempt.delay_before_s)} (retry policy)"
    if attempt.due_at is not None and attempt.started_at is not None:
        late = (attempt.started_at - attempt.due_at).total_seconds()
        line += f", started {_seconds(max(late, 0.0))} after due"
    return line


def _failure_lines(attempt: AttemptState, all_frames: bool) -> list[str]:
    """The error of a failed attempt and its traceback, indented: the last lines of the
    user's frames, or with ``all_frames`` every line as recorded."""
    if attempt.error is None:
        return []
    error = printable(f"{attempt.error.type}: {attempt.error.message}")
    recorded = attempt.error.traceback
    shown = recorded if all_frames else user_frames(recorded)
    trace = [printable(t.rstrip()) for t in shown.splitlines() if t.strip()]
    lines = [f"       {error}".rstrip()]
    if not all_frames and len(trace) > TRACEBACK_LINES:
        lines.append(f"         | … {len(trace) - TRACEBACK_LINES} earlier lines (--all-frames)")
        trace = trace[-TRACEBACK_LINES:]
    lines += [f"         | {t}" for t in trace]
    return lines


def _tag_width(state: ExecutionState) -> int:
    return len(str(max([a.number for a in state.attempts] + [state.next_attempt])))


def _labels(state: ExecutionState) -> list[str]:
    """What follows each attempt's bar: outcome, duration and worker, in columns."""
    pad = max((len(_outcome(a)) for a in state.attempts), default=0)
    return [
        f"{_outcome(a):<{pad}}  {_took(a):>7}  {printable(a.worker or '?')}".rstrip()
        for a in state.attempts
    ]


def _attempt_rows(state: ExecutionState, axis: _Axis, color: bool, all_frames: bool) -> list[str]:
    """Each attempt's row, preceded by its wait and followed by its failure."""
    tag = _tag_width(state)
    rows: list[str] = []
    previous: AttemptState | None = None
    for attempt, label in zip(state.attempts, _labels(state), strict=True):
        wait = _wait_line(attempt, previous)
        if wait:
            rows.append(wait)
        waited_from = state.requested_at if previous is None else previous.ended_at
        kind = attempt.outcome or "running"
        bar = _bar(_cells(axis, attempt, waited_from), kind, color)
        rows.append(f"  #{attempt.number:<{tag}} |{bar}| {_paint(label, kind, color)}")
        rows += _failure_lines(attempt, all_frames)
        previous = attempt
    return rows + _next_rows(state, axis, tag, color)


def _next_rows(state: ExecutionState, axis: _Axis, tag: int, color: bool) -> list[str]:
    """The attempt still to come, if the execution is waiting for one."""
    if state.status.value not in ("pending", "retry_scheduled"):
        return []
    if state.next_due_at is None:
        return [f"     ~ waiting for attempt #{state.next_attempt} ({state.status.value})"]
    cells = [" "] * axis.cols
    last = state.attempts[-1].ended_at if state.attempts else state.requested_at
    due = axis.col(state.next_due_at)
    for c in range(axis.col(last) if last else due, due):
        cells[c] = WAIT
    cells[due] = DUE
    bar = _paint("".join(cells), "due", color)
    note = f"next, due {_clock(state.next_due_at)}"
    if state.next_delay_s is not None:
        note += f" (after {_seconds(state.next_delay_s)})"
    return [f"  #{state.next_attempt:<{tag}} |{bar}| {note}"]


def _scale(axis: _Axis, tag: int) -> str:
    """Under the axis: where it starts (0 s, at what clock time) and how long it spans."""
    left, right = f" 0 s at {_clock(axis.start)} ", f" {_seconds(axis.span)} "
    rule = "─" * max(axis.cols - len(left) - len(right), 2)
    return f"{' ' * (tag + 4)}└{left}{rule}{right}┘"


def _final(state: ExecutionState) -> str | None:
    """The result as JSON (cut to ``RESULT_CHARS``), or the final error of an execution
    that ended with one, whatever its status is called."""
    if state.status.value == "succeeded":
        text = as_json(state.result)
        if len(text) > RESULT_CHARS:
            text = text[: RESULT_CHARS - 1] + "…"
        return f"  result: {text}"
    if state.status.value == "failed" or state.error is not None:
        cause = (
            f" [{state.cause.value}]" if state.cause and state.cause.value != "exception" else ""
        )
        error = f"{state.error.type}: {state.error.message}" if state.error else "?"
        return f"  final error{cause}: {printable(error)}"
    return None


def _links(state: ExecutionState) -> list[str]:
    """Reruns both ways: the execution this one re-runs, and those that re-ran it."""
    lines = [f"  rerun of {printable(state.rerun_of)}"] if state.rerun_of else []
    if state.reruns:
        lines.append(f"  rerun as {printable(', '.join(state.reruns))}")
    return lines


def _header(state: ExecutionState, color: bool) -> list[str]:
    n = len(state.attempts)
    status = _paint(state.status.value, state.status.value, color)
    what = printable(f"execution {state.execution_id}  {state.target or '?'}")
    return [
        f"{what}  {status}  ({n} attempt{'s' if n != 1 else ''})",
        f"  requested {_stamp(state.requested_at)}",
        *_links(state),
        *_cancel_requested(state),
    ]


def _cancel_requested(state: ExecutionState) -> list[str]:
    """A cancel that won while an attempt still runs: that attempt finishes, nothing after."""
    note = state.cancel
    if note is None or state.is_terminal:
        return []
    why = f": {printable(note.reason)}" if note.reason else ""
    return [
        f"  cancel requested {_stamp(note.at)}{why}; attempt {note.attempt - 1} finishes,"
        f" nothing runs after it"
        if note.attempt > 1 and state.status is Status.RUNNING
        else f"  cancel requested {_stamp(note.at)}{why}; attempt {note.attempt} never runs"
    ]


def render(
    state: ExecutionState, width: int = 72, color: bool = False, all_frames: bool = False
) -> str:
    """Header, the attempts on a time axis with their failures beneath, then the outcome.

    Tracebacks show the user's frames (Ricochet's and asyncio's left out, and
    counted); ``all_frames`` shows every line as it was recorded.
    """
    lines = _header(state, color)
    label = max((len(x) for x in _labels(state)), default=0)
    cols = max(MIN_COLS, width // 2, width - _tag_width(state) - 6 - label)
    axis = _axis(state, cols)
    rows = _attempt_rows(state, axis, color, all_frames)
    if state.attempts or state.next_due_at is not None:
        rows.append(_scale(axis, _tag_width(state)))
    if rows:
        lines += ["", *rows]
    final = _final(state)
    if final:
        lines += ["", final]
    return "\n".join(lines)
