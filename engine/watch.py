"""What the active supervisor keeps in memory, and the rules it keeps it by.

Only live executions (requested, running, waiting for a retry) are held, with
the attempts someone must vouch for (``Vigil``) and the idempotency keys inside
the de-duplication window (``KeyWindow``): memory is flat in the length of the
log. Ended executions leave at once; a short memory of them keeps a duplicate
request or start recorded just after the end from reviving one. Everything
here can be written to a checkpoint and restored from it, so a supervisor that
takes over reads only the log after that checkpoint (SPEC section 8).

Lazily: the supervisor reads every event of a busy log, but decides about very
few (a lost worker, a lost retry, a dead letter). So it keeps each live
execution's events as parsed JSON, reads from them only the few fields that
say what to watch (type, execution, attempt, a retry's due time), and validates
and folds them into an ``ExecutionState`` only when a decision needs one. An
event that does not validate then is left out of the fold and counted.

Pure: time comes in as data (monotonic seconds for the vigil, event times for
keys), and nothing here touches the broker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from ricochet.contracts import (
    EVENT_ADAPTER,
    Event,
    ReplyRequested,
    check_time,
    decode_event,
    encode_json,
)
from ricochet.engine.keys import KeyWindow, request_digest
from ricochet.engine.live import Live, RawEvent
from ricochet.engine.projection import Projection
from ricochet.engine.recent import Recent
from ricochet.engine.replies import Ledger
from ricochet.engine.state import ExecutionState, Status
from ricochet.engine.vigil import Vigil

MESSAGE_IDS = 50_000
"""Unkeyed triggers' message ids remembered (about 150 bytes each): a trigger redelivered
after a hand-over or a crash is recognised by it while its execution is live, one of the
last ``ENDED_MEMORY`` to end, or one of the last this many requested. Explicit keys are
kept for the whole de-duplication window instead; an id is a redelivery's guard, not a
key, and at hundreds of triggers a second a window of days would hold gigabytes."""
ENDED_MEMORY = 2_000
"""Recently ended executions remembered, so a duplicate request or start recorded just
after the end cannot revive one. Later stragglers (a zombie's outcome, seconds on)
need no memory: only a request or a start makes the supervisor watch an execution.
A bigger memory only made a busy worker's memory climb (2 MB per 10,000)."""

AttemptKey = tuple[str, int]


class Kind(Enum):
    """What an event means to the supervisor."""

    REQUESTED = "requested"
    STARTED = "started"
    ATTEMPT_ENDED = "attempt ended"
    RETRY_SCHEDULED = "retry scheduled"
    ENDED = "ended"
    CANCEL = "cancel"
    REPLY = "reply"
    OTHER = "other"


KINDS = {
    "execution_requested": Kind.REQUESTED,
    "attempt_started": Kind.STARTED,
    "attempt_succeeded": Kind.ATTEMPT_ENDED,
    "attempt_failed": Kind.ATTEMPT_ENDED,
    "retry_scheduled": Kind.RETRY_SCHEDULED,
    "execution_succeeded": Kind.ENDED,
    "execution_failed": Kind.ENDED,
    "child_reused": Kind.OTHER,
    "rerun_requested": Kind.OTHER,
    "execution_cancelled": Kind.CANCEL,
    "cancel_requested": Kind.CANCEL,
    "reply_requested": Kind.REPLY,
    "reply_sent": Kind.REPLY,
}
"""By type name without its version: a new version of a type means the same thing."""
BEGINNINGS = frozenset({Kind.REQUESTED, Kind.STARTED})
CANCEL_MARKS = (b'"execution_cancelled.', b'"cancel_requested.')
REPLY_MARK = b'"reply_requested.'
"""In a kept event's JSON, a reply request (restored into the ledger on a take-over)."""
"""In a kept event's JSON, a cancel's type; a false hit (an argument) costs one fold."""
"""The events that can make the supervisor watch an execution it does not know."""


def compact(data: bytes) -> bytes:
    """A copy of exactly ``data``'s size: orjson's output keeps the 4 KiB buffer it was
    written in (measured: 4,097 bytes held for a 341-byte event), which a backlog of
    100,000 pending executions would turn into 400 MiB."""
    return bytes(memoryview(data))


def is_start(raw: RawEvent) -> bool:
    """Cheaper than ``kind_of``, for the one kind whose time matters on a take-over."""
    type_ = raw.get("type")
    return isinstance(type_, str) and type_.startswith("attempt_started.")


def kind_of(raw: RawEvent) -> Kind | None:
    type_ = raw.get("type")
    if not isinstance(type_, str):
        return None
    return KINDS.get(type_.partition(".")[0])


def as_time(value: object) -> datetime | None:
    """An event time as written (ISO 8601, with its zone), in UTC; None if it is not one
    or is outside the range every reader shares (``contracts.limits``: a time at the edge
    of the calendar would overflow when moved to UTC, or when a window is added)."""
    if not isinstance(value, str):
        return None
    try:
        return check_time(datetime.fromisoformat(value))
    except ValueError:  # not ISO 8601, or NotReadable: out of range
        return None


@dataclass(slots=True)
class Watch:
    """Live executions, their vouched-for attempts, recent endings and used keys."""

    vigil: Vigil
    keys: KeyWindow
    live: dict[str, Live] = field(default_factory=dict)
    ended: Recent[str, None] = field(default_factory=lambda: Recent(ENDED_MEMORY))
    message_ids: Recent[int, None] = field(default_factory=lambda: Recent(MESSAGE_IDS))
    """Unkeyed triggers' message-id digests lately used (``engine.keys``)."""
    recovered: set[AttemptKey] = field(default_factory=set)
    awaiting_retry: set[str] = field(default_factory=set)
    """Live executions with a retry recorded and not yet started: what ``lost_retries``
    looks at, instead of every live execution (a backlog can be large)."""
    unstarted: deque[tuple[float, str]] = field(default_factory=deque)
    """Requested executions by when the watch first saw them, oldest first: where
    ``orphans`` looks for requests whose work never reached a worker."""
    cancelling: set[str] = field(default_factory=set)
    """Live executions with a cancel on the log: they may end with no terminal event (a
    cancel waits for the running attempt), so the watch folds them when an attempt ends."""
    replies: Ledger = field(default_factory=Ledger)
    """Reply requests of live executions, and replies owed for ended ones."""
    malformed: int = 0
    """Events left out: not even the fields the watch reads, or not valid when folded."""

    def note(self, event: Event, now: float) -> None:
        """Fold in a validated event (one the supervisor recorded itself, say)."""
        self.note_raw(dict(event.model_dump(mode="json")), now)

    def note_raw(self, raw: RawEvent, now: float) -> None:
        """Take one event as read (``now``: monotonic seconds); validation waits for a
        decision that needs it."""
        kind, execution_id, attempt = kind_of(raw), raw.get("execution_id"), raw.get("attempt")
        if kind is None or not isinstance(execution_id, str) or type(attempt) is not int:
            self.malformed += 1
            return
        if kind is Kind.REQUESTED:
            self._note_key(raw)
        if kind is Kind.REPLY:
            self._note_reply(raw, execution_id)
            return
        if execution_id in self.ended:
            return
        live = self.live.get(execution_id)
        if live is None:
            if kind not in BEGINNINGS:
                return  # a straggler of an execution ended and forgotten: nothing to watch
            live = self.live[execution_id] = Live()
            if kind is Kind.REQUESTED:
                self.unstarted.append((now, execution_id))
        live.events.append(compact(encode_json(raw)))
        live.folded = None
        self._follow(live, kind, (execution_id, attempt), raw, now)

    def _follow(self, live: Live, kind: Kind, key: AttemptKey, raw: RawEvent, now: float) -> None:
        if kind is Kind.STARTED:
            self.vigil.started(key, now)
            live.started(key[1], raw.get("at"), raw.get("worker"))
            if live.due_at is None:
                self.awaiting_retry.discard(key[0])
        elif kind is Kind.ATTEMPT_ENDED:
            self.vigil.ended(key)
            live.attempt_ended(key[1])
            self._forget_if_cancelled(key[0])
        elif kind is Kind.RETRY_SCHEDULED:
            live.expect_retry(raw, key[1])
            self.awaiting_retry.add(key[0])
        elif kind is Kind.ENDED:
            self.forget(key[0])
        elif kind is Kind.CANCEL:
            self.cancelling.add(key[0])
            self._forget_if_cancelled(key[0])

    def _forget_if_cancelled(self, execution_id: str) -> None:
        """A cancel ends an execution by the fold, not always by a terminal event: ask it
        (rarely: only executions someone cancelled)."""
        if execution_id in self.cancelling:
            state = self.state_of(execution_id)
            if state is not None and state.is_terminal:
                self.forget(execution_id)

    def _note_reply(self, raw: RawEvent, execution_id: str) -> None:
        """Rare events, so validated at once: a request joins its live execution (and its
        checkpoint row) or, if the execution has ended, is owed; a sent one is settled."""
        try:
            event = EVENT_ADAPTER.validate_python(raw)
        except ValueError:
            self.malformed += 1
            return
        live = self.live.get(execution_id)
        if isinstance(event, ReplyRequested):
            if live is not None:
                live.events.append(compact(encode_json(raw)))
            self.replies.requested(event, live is not None)
        else:
            self.replies.sent(execution_id, getattr(event, "request", ""))

    def _note_key(self, raw: RawEvent) -> None:
        """A request that used a key fills the window; one named after a trigger's message
        id is remembered among the recent ids."""
        key = raw.get("idempotency_key")
        digest = request_digest(key, raw.get("source"), raw.get("execution_id"))
        if digest is None:
            return
        if not isinstance(key, str):
            self.message_ids.add(digest, None)
            return
        at = as_time(raw.get("at"))
        if at is not None:
            self.keys.add(digest, at.timestamp())

    def used(self, digest: int, *, keyed: bool) -> bool:
        """Did ``digest`` start an execution: a key within the window, or a message id
        remembered, or naming an execution live or lately ended?"""
        if keyed:
            return digest in self.keys
        execution_id = f"{digest:032x}"
        return digest in self.message_ids or execution_id in self.live or execution_id in self.ended

    def forget(self, execution_id: str) -> None:
        """An execution ended: nothing of it is kept but its id, for a while (and the
        replies it owes, with what they say)."""
        if execution_id in self.replies.waiting:
            state = self.state_of(execution_id)
            self.replies.ended(state or ExecutionState(execution_id))
        live = self.live.pop(execution_id, None)
        self.awaiting_retry.discard(execution_id)
        self.cancelling.discard(execution_id)
        if live is not None:
            for attempt in live.open_attempts:
                self.vigil.ended((execution_id, attempt))
        for key in [k for k in self.recovered if k[0] == execution_id] if self.recovered else ():
            self.recovered.discard(key)
        self.ended.add(execution_id, None)

    def state_of(self, execution_id: str) -> ExecutionState | None:
        """The fold of a live execution's valid events (made now, kept until the next)."""
        live = self.live.get(execution_id)
        if live is None:
            return None
        if live.folded is None:
            projection = Projection()
            for event in self._valid(live.events):
                projection.apply(event)
            live.folded = projection.get(execution_id)
        return live.folded

    def _valid(self, events: Iterable[bytes]) -> Iterator[Event]:
        for data in events:
            try:
                yield decode_event(data)
            except Exception:  # invalid, overflowing, too deep: left out, and counted
                self.malformed += 1

    def states(self) -> Iterator[ExecutionState]:
        for execution_id in list(self.live):
            state = self.state_of(execution_id)
            if state is not None:
                yield state

    def lost_retries(self, now: datetime, bound: timedelta) -> Iterator[ExecutionState]:
        """Retries due longer than ``bound`` ago, never started and not yet re-published:
        their message was lost (a scheduler that died between recording and publishing,
        a delay queue that lost it). Whoever scheduled it may be alive: a copy of a retry
        that did arrive steps back at its start claim (SPEC 7.8)."""
        for execution_id in list(self.awaiting_retry):
            live = self.live[execution_id]
            due = as_time(live.due_at)
            if due is None or now - due <= bound:
                continue
            state = self.state_of(execution_id)
            if state is None or state.status is not Status.RETRY_SCHEDULED:
                continue
            if (execution_id, state.next_attempt) not in self.recovered:
                yield state

    def orphans(self, now: float, after_s: float) -> Iterator[ExecutionState]:
        """Executions requested at least ``after_s`` ago (monotonic ``now``) that never
        started and whose work was not dispatched again yet: the requester may have died
        between recording the request and publishing its work. Each is offered once."""
        while self.unstarted and now - self.unstarted[0][0] >= after_s:
            _, execution_id = self.unstarted.popleft()
            live = self.live.get(execution_id)
            if live is None or live.ever_started or (execution_id, 1) in self.recovered:
                continue
            state = self.state_of(execution_id)
            if state is not None and state.status is Status.PENDING:
                yield state

    def worker_of(self, key: AttemptKey) -> str | None:
        """The worker that started a running attempt, as its start says."""
        live = self.live.get(key[0])
        opened = None if live is None else live.open_attempts.get(key[1])
        return None if opened is None else opened[1]

    def rows(self) -> dict[str, list[Any]]:
        """Each live execution as a checkpoint keeps it (``Live.row``)."""
        return {execution_id: live.row() for execution_id, live in self.live.items()}

    def restore(
        self,
        live: dict[str, Live],
        ended: Iterable[str],
        recovered: Iterable[AttemptKey],
        vouched_at: Callable[[str | None], float],
    ) -> None:
        """Take over what a checkpoint says. ``vouched_at`` turns an open attempt's start
        time into the monotonic time from which it counts as vouched for (no time: now);
        requests never started count from now too."""
        now = vouched_at(None)
        for execution_id in ended:
            self.ended.add(execution_id, None)
        for execution_id, record in live.items():
            self.live[execution_id] = record
            if record.due_at is not None:
                self.awaiting_retry.add(execution_id)
            if not record.ever_started:
                self.unstarted.append((now, execution_id))
            if any(mark in event for event in record.events for mark in CANCEL_MARKS):
                self.cancelling.add(execution_id)
            self._restore_replies(record)
            for attempt, (at, _) in record.open_attempts.items():
                self.vigil.started((execution_id, attempt), vouched_at(at))
        self.recovered.update(recovered)

    def _restore_replies(self, record: Live) -> None:
        for data in record.events:
            if REPLY_MARK in data:
                event = next(self._valid((data,)), None)
                if isinstance(event, ReplyRequested):
                    self.replies.requested(event, live=True)

    def clear(self) -> None:
        """Forget everything (a take-over starts from its checkpoint, not from leftovers)."""
        self.live.clear()
        self.awaiting_retry.clear()
        self.cancelling.clear()
        self.unstarted.clear()
        self.vigil.vouched.clear()
        self.keys.buckets.clear()
        self.message_ids.clear()
        self.ended.clear()
        self.recovered.clear()
        self.replies.clear()
