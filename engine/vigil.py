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
