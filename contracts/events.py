"""The events: every fact Ricochet records, as frozen, versioned wire formats.

Each ``type`` string is stable and carries its version (``attempt_failed.v1``).
A changed shape gets a new version and an upcaster in ``contracts.upcasting``;
stored events are never rewritten.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from ricochet.contracts.base import UtcDatetime, WireModel
from ricochet.contracts.failure import ErrorInfo, FailureCause
from ricochet.contracts.limits import MAX_DELAY_S, ReadableJson
from ricochet.contracts.policy import RetryPolicy
from ricochet.contracts.reply import MAX_REPLY_ADDRESS_CHARS


class EventBase(WireModel):
    """What every event carries (SPEC section 3).

    ``event_id`` is deterministic (see ``event_id``): the same fact recorded
    twice has the same id, so readers recognise and drop the duplicate.
    """

    event_id: str
    execution_id: str
    attempt: int = Field(ge=0)
    at: UtcDatetime
    worker: str | None = None


class ExecutionRequested(EventBase):
    """Someone asked for ``target(*args, **kwargs)`` to run; ``attempt`` is 0.

    v2 added ``rerun_of``, the execution this one re-runs (``ricochet rerun``);
    v1 events are upcast on reading (``contracts.upcasting``).
    """

    type: Literal["execution_requested.v2"] = "execution_requested.v2"
    target: str
    args: tuple[ReadableJson, ...] = ()
    kwargs: dict[str, ReadableJson] = Field(default_factory=dict)
    parent_id: str | None = None
    idempotency_key: str | None = None
    source: str = "api"
    rerun_of: str | None = None


class AttemptStarted(EventBase):
    """A worker began an attempt; it records the policy it runs under.

    v2 added ``claim``: the id of this one try to start the attempt. Two copies of
    one work message make two starts with the same ``event_id``; the first in log
    order wins, and ``claim`` says which try that was, so the other does not run
    the body (SPEC 7.8). v1 starts are upcast with no claim.
    """

    type: Literal["attempt_started.v2"] = "attempt_started.v2"
    policy: RetryPolicy
    claim: str | None = Field(default=None, max_length=64)


class AttemptSucceeded(EventBase):
    """The attempt's function returned ``result``."""

    type: Literal["attempt_succeeded.v1"] = "attempt_succeeded.v1"
    result: ReadableJson = None


class AttemptFailed(EventBase):
    """The attempt failed: raised, lost its worker, or ran out of time."""

    type: Literal["attempt_failed.v1"] = "attempt_failed.v1"
    cause: FailureCause
    error: ErrorInfo


class RetryScheduled(EventBase):
    """Attempt ``next_attempt`` will start ``delay_s`` after the failure, at ``due_at``."""

    type: Literal["retry_scheduled.v1"] = "retry_scheduled.v1"
    next_attempt: int = Field(ge=2)
    delay_s: float = Field(ge=0, le=MAX_DELAY_S)
    due_at: UtcDatetime


class ExecutionSucceeded(EventBase):
    """Terminal: the execution's result."""

    type: Literal["execution_succeeded.v1"] = "execution_succeeded.v1"
    result: ReadableJson = None


class ExecutionFailed(EventBase):
    """Terminal: every allowed attempt failed; this is the error waiters get."""

    type: Literal["execution_failed.v1"] = "execution_failed.v1"
    cause: FailureCause
    error: ErrorInfo


class ChildReused(EventBase):
    """A retried parent called child ``position`` again, and got the result its earlier
    attempt's child ``child_id`` had already produced: the child did not run again."""

    type: Literal["child_reused.v1"] = "child_reused.v1"
    child_id: str
    position: int = Field(ge=0)
    target: str


class RerunRequested(EventBase):
    """Someone re-ran this (ended) execution as ``rerun_id``: the link back from the original."""

    type: Literal["rerun_requested.v1"] = "rerun_requested.v1"
    rerun_id: str


MAX_REASON_CHARS = 1000
"""The longest reason a cancel records."""


class CancelBase(EventBase):
    """What both cancel events carry: each claims attempt ``attempt`` as a start would.

    A cancel names the attempt it pre-empts (the next one that would run) and
    claims it with ``claim``, exactly as a worker's ``AttemptStarted`` does: the
    first claim of an (execution, attempt) in log order wins (SPEC 7.8). So
    whichever of a cancel and a worker's start comes first on the log decides, and
    the other changes nothing: no race, and no attempt runs after a cancel that won.
    """

    attempt: int = Field(ge=1)
    claim: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)
    source: str = Field(default="api", max_length=100)


class ExecutionCancelled(CancelBase):
    """Terminal: someone cancelled the execution while it waited to start attempt
    ``attempt`` (its first, or a retry). If that attempt's start came first on the log,
    the cancel lost, and changes nothing."""

    type: Literal["execution_cancelled.v1"] = "execution_cancelled.v1"


class CancelRequested(CancelBase):
    """Someone cancelled the execution while attempt ``attempt - 1`` ran: that attempt
    finishes, and attempt ``attempt`` never runs. If the running attempt fails, the
    execution ends cancelled there (no retry); if it succeeds, it ends succeeded (the
    result is kept: the cancel came too late to matter)."""

    type: Literal["cancel_requested.v1"] = "cancel_requested.v1"


class ReplyRequested(EventBase):
    """A trigger asked for a reply (AMQP ``reply_to``) when the execution ends; ``attempt``
    is 0. Recorded by the trigger intake beside the request (or alone, for a duplicate),
    so whichever supervisor is active when the execution ends knows what is owed."""

    type: Literal["reply_requested.v1"] = "reply_requested.v1"
    reply_to: str = Field(min_length=1, max_length=MAX_REPLY_ADDRESS_CHARS)
    correlation_id: str | None = Field(default=None, max_length=MAX_REPLY_ADDRESS_CHARS)


class ReplySent(EventBase):
    """The reply asked for by ``request`` (a ``reply_requested`` event id) was confirmed by
    the broker (``delivered``), or returned as unroutable (the address is gone) and dropped:
    either way, nothing more is owed for it."""

    type: Literal["reply_sent.v1"] = "reply_sent.v1"
    request: str
    delivered: bool


Event = Annotated[
    ExecutionRequested
    | AttemptStarted
    | AttemptSucceeded
    | AttemptFailed
    | RetryScheduled
    | ExecutionSucceeded
    | ExecutionFailed
    | ChildReused
    | RerunRequested
    | ExecutionCancelled
    | CancelRequested
    | ReplyRequested
    | ReplySent,
    Field(discriminator="type"),
]
"""One discriminated union: the only way events are read."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EventBatch = Annotated[tuple[Event, ...], Field(min_length=1)]
"""One stream message: a JSON array of one or more events, recorded together."""

BATCH_ADAPTER: TypeAdapter[EventBatch] = TypeAdapter(EventBatch)

EVENT_TYPES: tuple[type[EventBase], ...] = (
    ExecutionRequested,
    AttemptStarted,
    AttemptSucceeded,
    AttemptFailed,
    RetryScheduled,
    ExecutionSucceeded,
    ExecutionFailed,
    ChildReused,
    RerunRequested,
    ExecutionCancelled,
    CancelRequested,
    ReplyRequested,
    ReplySent,
)

TERMINAL_TYPES = ("execution_succeeded.v1", "execution_failed.v1", "execution_cancelled.v1")
"""Types that end an execution when they are news. ``cancel_requested`` is not one: the
execution it stops ends when its running attempt does (see ``CancelRequested``)."""


def event_id(execution_id: str, attempt: int, kind: str) -> str:
    """The deterministic id of one fact: the same fact always gets the same id."""
    return f"{execution_id}/{attempt}/{kind}"


BATCH_TYPE = "ricochet.events"
"""The AMQP ``type`` of an event-log message (one batch of events)."""

CLAIMS_HEADER = "ricochet-claims"
"""The claim ids of the one-try callers in a message, space-separated (a stream keeps
string headers but drops arrays), so one can tell, after a lost confirm, whether its
own claim reached the log."""
