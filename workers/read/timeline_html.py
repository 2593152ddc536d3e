"""An execution drawn as HTML: what ``ricochet status`` draws, for a browser.

One bar per attempt on a shared time axis (from the request to the end, or to
now while it runs), the wait before each retry as a thin line, and under it
each attempt's worker, outcome, cause, error and traceback. Every value from
the events is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from ricochet.engine import AttemptState, ExecutionState

MIN_SPAN_S = 0.001


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _clock(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def link(execution_id: str) -> str:
    """A link to an execution's page (ids are user data: quoted in the URL, escaped in text)."""
    return f'<a href="/ui/executions/{quote(execution_id, safe="")}">{_e(execution_id)}</a>'


@dataclass(frozen=True, slots=True)
class Axis:
    """The time axis of one execution: where a moment falls, in percent of the width."""

    start: datetime
    end: datetime

    def at(self, moment: datetime) -> float:
        span = max((self.end - self.start).total_seconds(), MIN_SPAN_S)
        return min(max((moment - self.start).total_seconds() / span * 100, 0.0), 100.0)


def axis_of(state: ExecutionState, now: datetime) -> Axis:
    starts = [a.started_at for a in state.attempts if a.started_at is not None]
    start = state.requested_at or (min(starts) if starts else now)
    ends = [a.ended_at for a in state.attempts if a.ended_at is not None]
    end = state.ended_at or (now if not state.is_terminal else max(ends, default=now))
    return Axis(start, max(end, start))


def _outcome(attempt: AttemptState) -> str:
    if attempt.ended_at is None:
        return "running"
    return "succeeded" if attempt.outcome == "succeeded" else "failed"


def _bar(axis: Axis, attempt: AttemptState, previous: AttemptState | None, now: datetime) -> str:
    if attempt.started_at is None:
        return ""
    left = axis.at(attempt.started_at)
    width = axis.at(attempt.ended_at or now) - left
    wait = ""
    if previous is not None and previous.ended_at is not None:
        wait_left = axis.at(previous.ended_at)
        wait = (
            f'<div class=wait style="left:{wait_left:.3f}%;width:{max(left - wait_left, 0):.3f}%"'
            f' title="waited"></div>'
        )
    kind = _outcome(attempt)
    return (
        f'<div class=axis>{wait}<div class="bar {kind}" data-attempt={attempt.number}'
        f' style="left:{left:.3f}%;width:{width:.3f}%" title="attempt {attempt.number}:'
        f' {_e(kind)}"></div></div>'
    )


def _wait_text(attempt: AttemptState, previous: AttemptState | None) -> str:
    if attempt.delay_before_s is None or previous is None:
        return ""
    text = f"waited {_seconds(attempt.delay_before_s)} (retry policy)"
    if attempt.due_at is not None and attempt.started_at is not None:
        late = max((attempt.started_at - attempt.due_at).total_seconds(), 0.0)
        text += f", started {_seconds(late)} after due"
    return f"<p class=wait-text data-delay={attempt.delay_before_s:.3f}>{_e(text)}</p>"


def _failure(attempt: AttemptState) -> str:
    if attempt.error is None:
        return ""
    cause = _e(attempt.cause.value) if attempt.cause is not None else ""
    error = attempt.error
    trace = (
        f"<details><summary>traceback</summary><pre class=traceback>{_e(error.traceback)}</pre>"
        "</details>"
        if error.traceback
        else ""
    )
    return (
        f"<p class=error>cause {cause}: <strong>{_e(error.type)}</strong>:"
        f" <span class=message>{_e(error.message)}</span></p>{trace}"
    )


def _took(attempt: AttemptState) -> str:
    if attempt.started_at is None or attempt.ended_at is None:
        return ""
    return f", took {_seconds((attempt.ended_at - attempt.started_at).total_seconds())}"


def _attempt(
    axis: Axis, attempt: AttemptState, previous: AttemptState | None, now: datetime
) -> str:
    kind = _outcome(attempt)
    head = (
        f"<h3>attempt {attempt.number} <span class=status-{kind}>{kind}</span></h3>"
        f"<p class=muted>worker {_e(attempt.worker or '?')}, started"
        f" {_clock(attempt.started_at)}{_took(attempt)}</p>"
    )
    body = _wait_text(attempt, previous) + _bar(axis, attempt, previous, now) + _failure(attempt)
    return f"<section class=attempt data-attempt={attempt.number}>{head}{body}</section>"


def _next(state: ExecutionState) -> str:
    if state.is_terminal or state.next_due_at is None:
        return ""
    delay = "" if state.next_delay_s is None else f" after {_seconds(state.next_delay_s)}"
    return f"<p class=next>attempt {state.next_attempt} due {_clock(state.next_due_at)}{delay}</p>"


def _links(state: ExecutionState) -> str:
    items = []
    if state.parent_id:
        items.append(f"<li>parent: {link(state.parent_id)}</li>")
    if state.rerun_of:
        items.append(f"<li>re-runs: {link(state.rerun_of)}</li>")
    items.extend(f"<li>re-run as: {link(rerun)}</li>" for rerun in state.reruns)
    return f"<ul class=links>{''.join(items)}</ul>" if items else ""


def _final(state: ExecutionState) -> str:
    if state.error is not None:
        cause = _e(state.cause.value) if state.cause is not None else ""
        return (
            f"<p class=final>failed ({cause}): <strong>{_e(state.error.type)}</strong>:"
            f" <span class=message>{_e(state.error.message)}</span></p>"
        )
    if state.is_terminal:
        return f"<p class=final>succeeded: <code>{_e(repr(state.result))}</code></p>"
    return ""


def _header(state: ExecutionState) -> str:
    status = state.status.value
    arguments = _e(
        ", ".join([*map(repr, state.args), *(f"{k}={v!r}" for k, v in state.kwargs.items())])
    )
    return (
        f"<h1>{_e(state.target or '?')}(<span class=args>{arguments}</span>)</h1>"
        f"<p>execution <code>{_e(state.execution_id)}</code>, status"
        f" <strong class='status status-{_e(status)}'>{_e(status)}</strong>,"
        f" requested {_clock(state.requested_at)} UTC, {len(state.attempts)} attempt(s)</p>"
    )


def render(state: ExecutionState, now: datetime) -> str:
    """The live part of the execution page: swapped in whole while the execution runs."""
    axis = axis_of(state, now)
    attempts = "".join(
        _attempt(axis, attempt, state.attempts[i - 1] if i else None, now)
        for i, attempt in enumerate(state.attempts)
    )
    final = "true" if state.is_terminal else "false"
    return (
        f"<div id=live data-final={final}>{_header(state)}{_links(state)}"
        f"<p class=muted>axis {_clock(axis.start)} to {_clock(axis.end)} UTC</p>"
        f"{attempts}{_next(state)}{_final(state)}</div>"
    )
