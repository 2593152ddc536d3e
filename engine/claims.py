"""Which try of an attempt runs: the rules that make ``retries=0`` at most once (SPEC 7.8).

A work message can arrive twice: re-published after a lost confirm, recovered
by the supervisor, redelivered, or simply published again. Each copy that gets
as far as recording ``AttemptStarted`` names its own try (``claim``), and the
first start of an (execution, attempt) in log order wins: the log is the one
order every worker agrees on. A worker remembers the first claims it has seen
lately (``FirstStarts``); a copy whose attempt may have started before that
memory begins is checked against the log itself (``judge_copy``).

Pure: times come in as arguments; the worker's ``ClaimBook`` does the I/O.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

CLOCK_SKEW = timedelta(seconds=30)
"""Hosts' clocks differ: a time written by another host is trusted to within this much."""
BUCKETS = 4


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


def judge_copy(covered: bool, started_lately: bool) -> Copy:
    """A delivery's fate before its try: drop it if its attempt is known to have
    started, try it if the memory covers its attempt, else ask the log."""
    if not covered:
        return Copy.ASK_LOG
    return Copy.DROP if started_lately else Copy.TRY


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

    def first(self, attempt: int) -> int | None:
        """The first claim seen for ``attempt``, or None."""
        for _, firsts in self.buckets:
            found = firsts.get(attempt)
            if found is not None:
                return found
        return None

    def note(self, attempt: int, claim: int, now: float) -> bool:
        """A start of ``attempt`` by ``claim`` was read; True if it is the first."""
        first = self.first(attempt)
        if first is None:
            self._current(now)[attempt] = claim
            return True
        return first == claim

    def _current(self, now: float) -> dict[int, int]:
        width = self.horizon_s / BUCKETS
        if not self.buckets or now - self.buckets[-1][0] >= width:
            self.buckets.append((now, {}))
        while self.buckets and now - self.buckets[0][0] > self.horizon_s + width:
            self.buckets.popleft()
        return self.buckets[-1][1]
