"""Which try of an attempt runs: the rules that make each attempt run at most once (SPEC 7.8).

SPEC 7.11 too: no copy, however old, runs an attempt that already ran.

A work message can arrive twice: re-published after a lost confirm, recovered
by the supervisor, redelivered, replayed by an operator, or published again by
anyone, however long after. Each copy that gets as far as recording
``AttemptStarted`` names its own try (``claim``), and the first claim of an
(execution, attempt) in log order wins: the log is the one order every worker
agrees on. A cancel claims the attempt it pre-empts the same way
(``contracts.CancelBase``).

Nothing in a copy is trusted to say how old it is. A worker folds the log into
``OpenAttempts``: every live execution (requested, not ended) with the attempt
that is open for it (the first after its request, the next after a
``retry_scheduled``) and the first claim of each of its attempts. It starts from
the supervisor's checkpoint (which holds every live execution) and reads the log
after it, so it has seen every claim of every live execution: a copy of an
attempt that is not the open one, or of an execution that is not live, never
runs, whatever its headers say and however old it is. Memory is the live
executions, plus ``ENDED_MEMORY`` recent endings (so a late copy of one is
acked quietly instead of dead-lettered).

An opener is always on the log before its work message is published (requests,
retries and recoveries are recorded and confirmed first), so once the book has
read the log up to a delivery's arrival it knows everything that delivery could
be a copy of: what it does not know by then was never requested, or ended.

Pure: the worker's ``ClaimBook`` does the reading and the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ricochet.engine.recent import Recent

ENDED_MEMORY = 20_000
"""Executions recently ended whose copies are dropped quietly (one int each, about 100
bytes with the dict's share); a copy of one ended earlier is dead-lettered instead."""
CLAIM_PREFIXES = ("attempt_started.", "execution_cancelled.", "cancel_requested.")
REQUESTED = "execution_requested."
RETRY = "retry_scheduled."
ENDINGS = ("execution_succeeded.", "execution_failed.")
CANCELLED = "execution_cancelled."
CANCEL_REQUESTED = "cancel_requested."
FAILED = "attempt_failed."
NO_CLAIM = 0
"""The claim of a start that names none (``attempt_started.v1``): it wins, and no try is it."""


class Copy(Enum):
    """What to do with a delivery before trying to start its attempt."""

    TRY = "try"
    """Its attempt is open and unclaimed: record this try's start and see who won."""
    DROP = "drop"
    """Its attempt was claimed, or its execution ended lately: ack this copy and stop."""
    WAIT = "wait"
    """The book has not read what this copy is for (yet): read the log up to now first."""
    NOT_OPEN = "not_open"
    """The log, read up to now, has no open attempt for it: never requested, or ended."""


@dataclass(slots=True)
class Opening:
    """One live execution, as far as claims go."""

    opened: int = 1
    """The attempt that may start now: 1 after the request, n after a retry to n."""
    claims: dict[int, int] = field(default_factory=dict)
    """The first claim read for each attempt (of any number: a cancel may name the next)."""
    cancelled_from: int | None = None
    """The attempt a ``cancel_requested`` that won claimed: the one before it is the last."""


@dataclass(slots=True)
class OpenAttempts:
    """Every live execution's open attempt and first claims, folded from the log.

    Executions and claims are kept as ``hash``es (ints) of their ids: this is an
    in-process memory, never written anywhere.
    """

    live: dict[int, Opening] = field(default_factory=dict)
    ended: Recent[int, int] = field(default_factory=lambda: Recent(ENDED_MEMORY))
    """Recent endings, each with the attempt a winning cancel claimed (0: none)."""

    def note(self, raw: dict[str, object]) -> int | None:
        """Fold in one event as parsed JSON; the execution it touched (as its hash), if any."""
        type_, execution_id, attempt = raw.get("type"), raw.get("execution_id"), raw.get("attempt")
        if not isinstance(type_, str) or not isinstance(execution_id, str):
            return None
        if type(attempt) is not int:
            return None
        execution = hash(execution_id)
        if type_.startswith(REQUESTED):
            if execution not in self.ended and execution not in self.live:
                self.live[execution] = Opening()
            return execution
        opening = self.live.get(execution)
        if opening is None:
            return None  # a straggler, or a claim of an execution never requested
        if type_.startswith(CLAIM_PREFIXES):
            self._claim(execution, opening, attempt, type_, raw.get("claim"))
        elif type_.startswith(RETRY):
            following = raw.get("next_attempt")
            opening.opened = following if type(following) is int else attempt + 1
        elif type_.startswith(ENDINGS) or (
            type_.startswith(FAILED) and opening.cancelled_from == attempt + 1
        ):
            self._end(execution)
        return execution

    def _claim(
        self, execution: int, opening: Opening, attempt: int, type_: str, claim: object
    ) -> None:
        mine = hash(claim) if isinstance(claim, str) else NO_CLAIM
        if attempt in opening.claims:
            return  # a later claim of a claimed attempt changes nothing
        opening.claims[attempt] = mine
        if type_.startswith(CANCELLED):
            self._end(execution, attempt)  # a cancel that won while nothing ran ends it
        elif type_.startswith(CANCEL_REQUESTED):
            opening.cancelled_from = attempt

    def _end(self, execution: int, cancelled: int = 0) -> None:
        self.live.pop(execution, None)
        self.ended.add(execution, cancelled)

    def judge(self, execution_id: str, attempt: int, *, read_to_now: bool) -> Copy:
        """A delivery's fate before its try. ``read_to_now``: the book has read the log
        at least as far as it was when the delivery arrived (so what it does not know,
        nobody opened)."""
        execution = hash(execution_id)
        opening = self.live.get(execution)
        if opening is None:
            if execution in self.ended:
                return Copy.DROP
            return Copy.NOT_OPEN if read_to_now else Copy.WAIT
        if attempt in opening.claims or attempt < opening.opened:
            return Copy.DROP
        if attempt > opening.opened:
            return Copy.NOT_OPEN if read_to_now else Copy.WAIT
        return Copy.TRY

    def won(self, execution_id: str, attempt: int, claim: str) -> bool:
        """Once ``claim``'s start has been read: is it the first claim of the attempt that
        was open? (An execution that ended meanwhile, or an attempt not open: no.)"""
        opening = self.live.get(hash(execution_id))
        if opening is None or attempt != opening.opened:
            return False
        return opening.claims.get(attempt) == hash(claim)

    def claimed(self, execution_id: str, attempt: int) -> bool:
        """Has any claim of this attempt been read (a cancel that won, say, even one that
        ended the execution while the attempt before it still ran)?"""
        execution = hash(execution_id)
        opening = self.live.get(execution)
        if opening is None:
            return self.ended.get(execution) == attempt
        return attempt in opening.claims


def is_claim(raw: dict[str, object]) -> bool:
    """A start or a cancel, as parsed JSON: what claims an attempt."""
    type_ = raw.get("type")
    return isinstance(type_, str) and type_.startswith(CLAIM_PREFIXES)
