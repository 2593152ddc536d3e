"""The retry policy as data: what an ``AttemptStarted`` event records it ran under.

Parsing the user's ``retries=`` forms and computing delays is the engine's job
(``engine.policy``); this is only the normalised shape that travels.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ricochet.contracts.base import WireModel
from ricochet.contracts.limits import MAX_DELAY_S


class RetryPolicy(WireModel):
    """Up to ``retries`` retries, the k-th waiting between ``delay_min`` and ``delay_max``.

    ``retries=N`` is ``(N, 0, 0)``; ``(N, d)`` is ``(N, d, d)``; ``(N, lo, hi)``
    spreads the delays linearly from ``lo`` (first retry) to ``hi`` (last).
    """

    retries: int = Field(default=0, ge=0)
    delay_min: float = Field(default=0.0, ge=0, le=MAX_DELAY_S)
    delay_max: float = Field(default=0.0, ge=0, le=MAX_DELAY_S)
    """Delays are bounded (``contracts.limits.MAX_DELAY_S``) so that a retry's due time,
    its failure's time plus its delay, stays inside the calendar (SPEC 7.12)."""

    @model_validator(mode="after")
    def _range_is_ordered(self) -> RetryPolicy:
        if self.delay_min > self.delay_max:
            raise ValueError(f"delay_min {self.delay_min} > delay_max {self.delay_max}")
        return self

    @property
    def max_attempts(self) -> int:
        """The first attempt plus every retry (SPEC 7.4)."""
        return 1 + self.retries


AT_MOST_ONCE = RetryPolicy()
"""The default: one attempt, never re-run, not even after a lost worker."""
