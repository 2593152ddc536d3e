"""Worker-loss detection as bookkeeping: which running attempts someone still vouches for.

An attempt is vouched for when the supervisor sees it start and whenever a
heartbeat lists it. One that no heartbeat has vouched for within the loss
window is lost, whether its worker died, lost its connection, or never got
the confirm for the start it recorded. Time comes in as data (monotonic
seconds), so the rule is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

AttemptKey = tuple[str, int]
"""(execution id, attempt number)"""


@dataclass(slots=True)
class Vigil:
    """Last time each running attempt was vouched for."""

    window_s: float
    vouched: dict[AttemptKey, float] = field(default_factory=dict)

    def started(self, key: AttemptKey, now: float) -> None:
        """The log says ``key`` started: it gets a full window before it can be lost."""
        self.vouched.setdefault(key, now)

    def heartbeat(self, keys: Iterable[AttemptKey], now: float) -> None:
        """A worker says it is running ``keys``; only attempts known to be running count."""
        for key in keys:
            if key in self.vouched:
                self.vouched[key] = now

    def ended(self, key: AttemptKey) -> None:
        self.vouched.pop(key, None)

    def restart_clock(self, now: float) -> None:
        """A new supervisor gives everyone a full window before judging anyone."""
        for key in self.vouched:
            self.vouched[key] = now

    def overdue(self, now: float) -> list[AttemptKey]:
        """Attempts nobody vouched for within the window, oldest first."""
        late = [(at, key) for key, at in self.vouched.items() if now - at > self.window_s]
        return [key for _, key in sorted(late)]


def vouched_since(now: float, age_s: float, window_s: float, grace_s: float) -> float:
    """From when an attempt found running on a take-over counts as vouched for.

    Since it started (``age_s`` ago), so a dead worker's attempt is judged a loss
    window after its start, not a window after the take-over; but never less
    than ``grace_s`` before judgement from ``now``, so a live worker's next
    heartbeat, which the new supervisor has not heard yet, always comes in time.
    """
    return now - min(max(age_s, 0.0), window_s - grace_s)


def take_over_grace(heartbeat_s: float, window_s: float) -> float:
    """Three heartbeats, or half the window if that is longer (never the whole window)."""
    return min(max(3 * heartbeat_s, window_s / 2), window_s)


def outage_at_take_over(
    now: float, lost_at: float | None, back_at: float | None, standby_s: float
) -> bool:
    """Does a take-over at ``now`` belong to an outage of the supervisor's own connection
    (lost at ``lost_at``, back at ``back_at``; None or earlier: still being restored)?

    Then the broker, or the way to it, was away for the workers too, and those not
    heard since get time to reconnect (``Attendance.outage``). Only if the lease came
    with the connection, though: a supervisor that stood by for longer than
    ``standby_s`` after coming back saw another hold the lease, which heard the workers
    come back; its take-over follows that one's end, and a worker silent now went
    silent then (a SIGKILL, say), not in the outage.
    """
    if lost_at is None:
        return False
    back = now if back_at is None or back_at < lost_at else back_at
    return now - back <= standby_s


@dataclass(slots=True)
class Attendance:
    """Which workers the supervisor heard from lately, and what a gap in hearing means.

    When no heartbeat at all arrived for a few intervals, the broker (or the
    supervisor's own connection) was away: nobody's silence meant anything then.
    Once heartbeats flow again, a worker not heard from since gets time to
    reconnect (``reconnect_s``, the longest its connection waits between tries)
    plus a loss window before its attempts can be judged lost; once it is heard
    from, its heartbeats speak for its attempts as usual. So a broker restart does
    not fail live work just because one worker reconnected a few seconds later.
    """

    heartbeat_s: float
    window_s: float
    reconnect_s: float
    last_seen: dict[str, float] = field(default_factory=dict)
    last_receipt: float = float("-inf")
    outage_ended: float | None = None

    def listening(self, now: float) -> bool:
        """Heartbeats flow (the supervisor's own worker's included) with no gap now."""
        return now - self.last_receipt <= 3 * self.heartbeat_s

    def heard(self, worker: str, now: float) -> bool:
        """A heartbeat from ``worker``; True when it is the first after a gap."""
        after_gap = not self.listening(now)
        if after_gap and self.last_receipt != float("-inf"):
            self.outage_ended = now
        self.last_receipt = now
        self.last_seen[worker] = now
        return after_gap

    def outage(self, ended: float) -> None:
        """The broker was away until ``ended`` (a supervisor that takes over right after
        its own connection came back learns it that way, having heard nobody before)."""
        self.outage_ended = ended

    def may_judge(self, worker: str | None, now: float) -> bool:
        """Can an attempt of ``worker`` be judged lost now, or may it still be reconnecting
        after the last outage (not heard from since, and not yet given time to)?"""
        if self.outage_ended is None or worker is None:
            return True
        if self.last_seen.get(worker, float("-inf")) >= self.outage_ended:
            return True
        return now >= self.outage_ended + self.reconnect_s + self.window_s

    def forget_quiet(self, now: float, after_windows: float) -> None:
        """Workers silent for several loss windows are gone: their entries go too."""
        horizon = now - after_windows * self.window_s
        for worker in [w for w, seen in self.last_seen.items() if seen < horizon]:
            del self.last_seen[worker]


@dataclass(slots=True)
class OwnHeartbeats:
    """A worker's view of its own heartbeats: was it cut off long enough to be judged?

    The supervisor judges an attempt lost once no heartbeat listed it for the loss
    window. A worker whose heartbeats could not get through for longer than that
    (its broker or network away, or the process paused) cannot know whether it was
    judged, only that it may have been: it learns this when a heartbeat gets
    through again, and says so then.
    """

    window_s: float
    last_sent: float | None = None

    def sent(self, now: float) -> float | None:
        """A heartbeat got through at ``now``: how long since the one before, when that
        is longer than the loss window (else None)."""
        before, self.last_sent = self.last_sent, now
        if before is None or now - before <= self.window_s:
            return None
        return now - before
