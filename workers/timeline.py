"""An execution's attempts as a timeline a person can read at a glance."""

from __future__ import annotations

from datetime import datetime

from engine import AttemptState, ExecutionState


def _clock(at: datetime | None) -> str:
    return "--:--:--.---" if at is None else at.strftime("%H:%M:%S.%f")[:-3]


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _wait_line(attempt: AttemptState, previous: AttemptState | None) -> str | None:
    if attempt.delay_before_s is None or previous is None:
        return None
    line = f"     ~ waited {_seconds(attempt.delay_before_s)} (retry policy)"
    if attempt.due_at is not None and attempt.started_at is not None:
        late = (attempt.started_at - attempt.due_at).total_seconds()
        line += f", started {_seconds(max(late, 0.0))} after due"
    return line


def _attempt_line(attempt: AttemptState) -> str:
    took = ""
    if attempt.started_at is not None and attempt.ended_at is not None:
        took = f" ({_seconds((attempt.ended_at - attempt.started_at).total_seconds())})"
    outcome = attempt.outcome or "running"
    if attempt.cause is not None and attempt.cause.value != "exception":
        outcome += f" [{attempt.cause.value}]"
    line = (
        f"  #{attempt.number}  {_clock(attempt.started_at)} -> {_clock(attempt.ended_at)}{took}"
        f"  {outcome:<10} on {attempt.worker or '?'}"
    )
    if attempt.error is not None:
        line += f"\n       {attempt.error.type}: {attempt.error.message}"
    return line


def render(state: ExecutionState) -> str:
    """Header, then one line per attempt with the wait before it."""
    lines = [
        f"execution {state.execution_id}  {state.target or '?'}  {state.status.value}"
        f"  ({len(state.attempts)} attempt{'s' if len(state.attempts) != 1 else ''})",
        f"  requested {_clock(state.requested_at)}",
    ]
    previous: AttemptState | None = None
    for attempt in state.attempts:
        wait = _wait_line(attempt, previous)
        if wait:
            lines.append(wait)
        lines.append(_attempt_line(attempt))
        previous = attempt
    if state.next_due_at is not None:
        lines.append(f"     ~ next attempt #{state.next_attempt} due {_clock(state.next_due_at)}")
    if state.status.value == "succeeded":
        lines.append(f"  result: {state.result!r}")
    elif state.error is not None and state.status.value == "failed":
        lines.append(f"  final error: {state.error.type}: {state.error.message}")
    return "\n".join(lines)
