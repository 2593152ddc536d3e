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
