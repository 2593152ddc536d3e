"""Replies: which are owed, and what each says. Pure: the supervisor does the publishing.

A trigger with ``reply_to`` is recorded as ``reply_requested`` beside its
execution's request (or alone, for a duplicate that matched an execution). A
reply is owed from when both the request for it and the execution's end are on
the log, until ``reply_sent`` is: so a supervisor that takes over knows what
is still owed, and sends it again (a receiver de-duplicates by execution id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from ricochet.contracts import ReplyRequested, ReplySent, ReplyV1, event_id
from ricochet.engine.state import ExecutionState, Status

ANSWERS = {
    Status.SUCCEEDED: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}
"""The terminal statuses and how a reply names them."""


def _address_digest(reply_to: str, correlation_id: str | None) -> str:
    text = f"{reply_to}\x00{correlation_id or ''}"
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()[:16]


def reply_requested(
    execution_id: str, reply_to: str, correlation_id: str | None, at: datetime, worker: str
) -> ReplyRequested:
    """The request for a reply; its id is the same for the same address, so a trigger
    redelivered after a lost confirm asks for one reply, not two."""
    kind = f"reply-{_address_digest(reply_to, correlation_id)}"
    return ReplyRequested(
        event_id=event_id(execution_id, 0, kind),
        execution_id=execution_id,
        attempt=0,
        at=at,
        worker=worker,
        reply_to=reply_to,
        correlation_id=correlation_id,
    )


def reply_sent(request: ReplyRequested, delivered: bool, at: datetime, worker: str) -> ReplySent:
    """Nothing more is owed for ``request``: confirmed (``delivered``), or unroutable."""
    kind = f"reply-sent-{request.event_id.rpartition('/reply-')[2]}"
    return ReplySent(
        event_id=event_id(request.execution_id, 0, kind),
        execution_id=request.execution_id,
        attempt=0,
        at=at,
        worker=worker,
        request=request.event_id,
        delivered=delivered,
    )


def reply_of(state: ExecutionState) -> ReplyV1 | None:
    """What the reply for an ended execution says; None while it has not ended."""
    answer = ANSWERS.get(state.status)
    if answer is None:
        return None
    return ReplyV1(
        execution_id=state.execution_id,
        target=state.target or "",
        status=answer,  # type: ignore[arg-type]  # one of the Literal's three, by ANSWERS
        result=state.result if state.status is Status.SUCCEEDED else None,
        error=state.error,
        cause=state.cause,
        attempts=len(state.attempts),
        ended_at=state.ended_at,
    )


@dataclass(slots=True)
class Owed:
    """The replies owed for one ended execution: its requests not yet sent, and the reply
    (None until its end is known: a request that came after the execution left memory
    needs the end read back from the log)."""

    requests: dict[str, ReplyRequested] = field(default_factory=dict)
    reply: ReplyV1 | None = None


@dataclass(slots=True)
class Ledger:
    """Reply requests of live executions, and the replies owed for ended ones.

    Bounded by what is outstanding: a request leaves when its ``reply_sent`` is on
    the log (or its execution's end is, for ``waiting``)."""

    waiting: dict[str, dict[str, ReplyRequested]] = field(default_factory=dict)
    """Live execution id -> its reply requests (event id -> request)."""
    owed: dict[str, Owed] = field(default_factory=dict)
    """Ended execution id -> what is owed for it."""
    ready: dict[str, None] = field(default_factory=dict)
    """Ended execution ids with a reply to send, oldest first (an ordered set): what the
    replier takes, so a burst of endings costs it one look each, not a scan of ``owed``."""
    news: bool = False
    """Something became owed since the supervisor last looked."""

    def requested(self, request: ReplyRequested, live: bool) -> None:
        """A request on the log; ``live``: its execution has not ended (as far as known)."""
        if live:
            self.waiting.setdefault(request.execution_id, {})[request.event_id] = request
            return
        owed = self.owed.setdefault(request.execution_id, Owed())
        owed.requests[request.event_id] = request
        self._ready(request.execution_id, owed)

    def ended(self, state: ExecutionState) -> None:
        """An execution with replies waiting ended: they are owed now."""
        requests = self.waiting.pop(state.execution_id, None)
        if requests:
            owed = self.owed.setdefault(state.execution_id, Owed())
            owed.requests.update(requests)
            owed.reply = reply_of(state)
            self._ready(state.execution_id, owed)

    def owe(self, execution_id: str, owed: Owed) -> None:
        """Owed as a checkpoint (or a read of the log) says."""
        self.owed[execution_id] = owed
        self._ready(execution_id, owed)

    def _ready(self, execution_id: str, owed: Owed) -> None:
        self.news = True
        if owed.reply is not None:
            self.ready[execution_id] = None

    def sent(self, execution_id: str, request: str) -> None:
        """``reply_sent`` is on the log: that request is settled."""
        owed = self.owed.get(execution_id)
        if owed is None:
            self.waiting.get(execution_id, {}).pop(request, None)
            return
        owed.requests.pop(request, None)
        if not owed.requests:
            del self.owed[execution_id]
            self.ready.pop(execution_id, None)

    def needs_end(self) -> list[str]:
        """Executions owed a reply whose end must be read back from the log."""
        return [execution_id for execution_id, owed in self.owed.items() if owed.reply is None]

    def clear(self) -> None:
        self.waiting.clear()
        self.owed.clear()
        self.ready.clear()
        self.news = False
