"""Which try of an attempt runs: the rules that make ``retries=0`` at most once (SPEC 7.8).

A work message can arrive twice: re-published after a lost confirm, recovered
by the supervisor, redelivered, or simply published again. Each copy that gets
as far as recording ``AttemptStarted`` names its own try (``claim``), and the
first start of an (execution, attempt) in log order wins: the log is the one
order every worker agrees on. A worker remembers the first claims it has seen
lately (``FirstStarts``); a copy whose attempt may have started before that
memory begins is checked against the log itself (``judge_copy``).

A cancel claims the attempt it pre-empts the same way (``contracts.CancelBase``),
but earlier than any start of it could be: while the attempt waits in a delay
queue, or while the one before it runs. So cancels are held past the horizon
(up to ``HELD_CANCELS`` of them), and a copy is covered only if the memory also
began before the earliest cancel it must obey (``cancel_floor``).

Pure: times come in as arguments; the worker's ``ClaimBook`` does the I/O.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

CLOCK_SKEW = timedelta(seconds=30)
"""Hosts' clocks differ: a time written by another host is trusted to within this much."""
BUCKETS = 4
HELD_CANCELS = 100_000
"""Cancel claims a worker holds (about 100 bytes each); past that, the oldest go and the
memory stops vouching for cancels before then (copies older than that ask the log)."""
CLAIM_PREFIXES = ("attempt_started.", "execution_cancelled.", "cancel_requested.")
CANCEL_PREFIXES = CLAIM_PREFIXES[1:]


class Copy(Enum):
    """What to do with a delivery before trying to start its attempt."""

    TRY = "try"
    """No start of its attempt is known: record this try's start and see who won."""
    DROP = "drop"
    """Its attempt has started already: someone owns it; ack this copy and stop."""
    ASK_LOG = "ask_log"
    """The attempt may have started before this worker knew the log: read it first."""


def earliest_start(
    attempt: int,
    due_at_s: float | None,
    requested_at_ms: int | None,
    published_at: datetime | None,
) -> datetime | None:
    """The earliest an attempt of this message can have started: its due time for a
    retry, its request time for a first attempt, else the message's publish time."""
    with contextlib.suppress(OverflowError, ValueError, OSError):
        if attempt > 1 and due_at_s is not None:
            return datetime.fromtimestamp(due_at_s, UTC)
        if requested_at_ms is not None:
            return datetime.fromtimestamp(requested_at_ms / 1000, UTC)
    return published_at


def memory_covers(
    earliest: datetime | None, since: datetime | None, now: datetime, horizon_s: float
) -> bool:
    """Would a memory of starts kept from ``since``, for ``horizon_s`` seconds, hold
    every start of an attempt that cannot have started before ``earliest``?"""
    if earliest is None or since is None:
        return False
    remembered = max(since, now - timedelta(seconds=horizon_s))
    return earliest - CLOCK_SKEW >= remembered


def cancel_floor(
    attempt: int, requested_at_ms: int | None, published_at: datetime | None
) -> datetime | None:
    """The earliest a cancel that this copy must obey can be on the log.

    A first attempt: its request. A retry: its message's publish. A cancel recorded
    before the retry was scheduled was seen by whoever scheduled it (a worker's claim
    book, the supervisor's fold), who then scheduled none; one that came within their
    lag of reading the log is recorded within the clock skew of the publish.
    """
    if attempt == 1 and requested_at_ms is not None:
        with contextlib.suppress(OverflowError, ValueError, OSError):
            return datetime.fromtimestamp(requested_at_ms / 1000, UTC)
    return published_at


def cancels_covered(floor: datetime | None, held_since: datetime | None) -> bool:
    """Has a memory holding every cancel claim seen since ``held_since`` seen every cancel
    a copy with this ``floor`` must obey?"""
    if floor is None or held_since is None:
        return False
    return floor - CLOCK_SKEW >= held_since


def is_claim(raw: dict[str, object]) -> bool:
    """A start or a cancel, as parsed JSON: what claims an attempt."""
    type_ = raw.get("type")
    return isinstance(type_, str) and type_.startswith(CLAIM_PREFIXES)


def is_cancel(raw: dict[str, object]) -> bool:
    type_ = raw.get("type")
    return isinstance(type_, str) and type_.startswith(CANCEL_PREFIXES)


def judge_copy(covered: bool, started_lately: bool) -> Copy:
    """A delivery's fate before its try: drop it if its attempt is known to have been
    claimed (whatever the memory covers: what it holds is on the log), try it if the
    memory covers its attempt, else ask the log."""
    if started_lately:
        return Copy.DROP
    return Copy.TRY if covered else Copy.ASK_LOG


def scan_floor(published_at: datetime | None) -> datetime | None:
    """Where to start reading the log for a message published at ``published_at``
    (None: from the first entry)."""
    return None if published_at is None else published_at - CLOCK_SKEW


@dataclass(slots=True)
class FirstStarts:
    """The first claim of each attempt started within the last ``horizon_s`` seconds.

    Attempts and claims are kept as hashes (ints); time is a monotonic reading in
    seconds, given by the caller. Memory is bounded: a bucket per quarter horizon.
    """

    horizon_s: float
    buckets: deque[tuple[float, dict[int, int]]] = field(default_factory=deque)
    held: OrderedDict[int, int] = field(default_factory=OrderedDict)
    """Cancel claims that won, oldest first, kept past the horizon (see the module)."""
    hold_capacity: int = HELD_CANCELS
    dropped_holds: int = 0
    """Cancels forgotten for room: the memory no longer vouches for cancels before then."""

    def first(self, attempt: int) -> int | None:
        """The first claim seen for ``attempt``, or None."""
        if self.held:
            held = self.held.get(attempt)
            if held is not None:
                return held
        for _, firsts in self.buckets:
            found = firsts.get(attempt)
            if found is not None:
                return found
        return None

    def note(self, attempt: int, claim: int, now: float, *, hold: bool = False) -> bool:
        """A claim of ``attempt`` (a start; a cancel with ``hold``) was read; True if it is
        the first."""
        first = self.first(attempt)
        if first is None:
            if hold:
                self._hold(attempt, claim)
            else:
                self._current(now)[attempt] = claim
            return True
        return first == claim

    def _hold(self, attempt: int, claim: int) -> None:
        self.held[attempt] = claim
        while len(self.held) > self.hold_capacity:
            self.held.popitem(last=False)
            self.dropped_holds += 1

    def _current(self, now: float) -> dict[int, int]:
        width = self.horizon_s / BUCKETS
        if not self.buckets or now - self.buckets[-1][0] >= width:
            self.buckets.append((now, {}))
        while self.buckets and now - self.buckets[0][0] > self.horizon_s + width:
            self.buckets.popleft()
        return self.buckets[-1][1]
