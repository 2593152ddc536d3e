"""Cancelling: what a cancel does to an execution's state, and the error its waiters get.

A cancel claims the attempt it names (the next one that would run) like a start:
the first claim of an attempt in log order wins (SPEC 7.8), so the fold agrees
with every worker about who got it. A cancel that won ends the execution at once
if nothing runs; if the attempt before the claimed one still runs, it is noted
(``ExecutionState.cancel``) and the execution ends when that attempt ends: cancelled
if it failed (it is not retried, even if the policy had no retry left), succeeded if
it succeeded (its result is kept: the cancel came too late to matter). A cancel that
lost (its attempt had started, or the execution had ended) changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ricochet.contracts import CancelRequested, ErrorInfo, ExecutionCancelled
from ricochet.engine.state import CancelNote, ExecutionState, Status, with_state_changes

CANCELLED_TYPE = "Cancelled"
"""The remote error type of a cancelled execution (``ricochet.errors.Cancelled``)."""


def apply_cancel(
    state: ExecutionState, event: ExecutionCancelled | CancelRequested
) -> ExecutionState:
    """The state after a cancel of attempt ``event.attempt``; unchanged if it lost.

    It wins whenever its attempt had not started and the execution had not ended, as
    it does in every worker's claim book, even if it names a later attempt than the
    next (no canceller writes one, but the fold and the workers must agree on any log):
    the attempts before it run, and the failure of the one just before it ends the
    execution. The earliest attempt claimed is the one that counts.
    """
    claimed = event.attempt
    if state.is_terminal or state.progress >= (claimed, 1):
        return state  # over, or its attempt started first: the cancel lost
    if state.cancel is not None and state.cancel.attempt <= claimed:
        return state  # an earlier claim already stops this attempt
    noted: dict[str, Any] = {"cancel": CancelNote(claimed, event.reason, event.at)}
    if state.status in (Status.PENDING, Status.RETRY_SCHEDULED) and state.next_attempt == claimed:
        noted.update(ends_cancelled(state, event.at, None, event.reason))
    return with_state_changes(state, noted)


def with_cancel_from(state: ExecutionState, claimed: int) -> ExecutionState:
    """``state`` with a cancel of attempt ``claimed`` noted: for a worker that holds no log
    but saw that claim (a cancel that won) in its claim book before recording an outcome."""
    return with_state_changes(state, {"cancel": CancelNote(claimed)})


def ends_cancelled(
    state: ExecutionState, at: datetime, running: int | None, reason: str | None = None
) -> dict[str, Any]:
    """What ends the execution cancelled at ``at``; ``running``: the attempt that ran
    when the cancel came, and failed since."""
    return {
        "status": Status.CANCELLED,
        "ended_at": at,
        "next_due_at": None,
        "next_delay_s": None,
        "error": cancelled_error(state, running, _reason(state) if reason is None else reason),
    }


def _reason(state: ExecutionState) -> str:
    return "" if state.cancel is None else state.cancel.reason


def cancelled_error(state: ExecutionState, running: int | None, reason: str | None) -> ErrorInfo:
    """What a waiter is told: ``Cancelled``, with when and why."""
    if running is None and state.next_attempt == 1:
        what = f"execution {state.execution_id} was cancelled before it started"
    elif running is None:
        what = f"execution {state.execution_id} was cancelled before attempt {state.next_attempt}"
    else:
        what = (
            f"execution {state.execution_id} was cancelled while attempt {running} ran;"
            " that attempt failed and was not retried"
        )
    return ErrorInfo(type=CANCELLED_TYPE, message=f"{what}: {reason}" if reason else what)
