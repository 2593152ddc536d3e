"""What to do with a work message once its events are recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ricochet.contracts import RetryScheduled


@dataclass(frozen=True, slots=True)
class Ack:
    """Done with it: the events say what happened."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Publish attempt ``attempt`` of the same body, due at ``due_at``."""

    body: bytes
    target: str
    attempt: int
    delay_s: float
    due_at: datetime
    requested_at_ms: int | None = None
    traceparent: str | None = None
    """The W3C trace context the work came with: every retry stays in its trace."""

    @classmethod
    def scheduled(
        cls,
        retry: RetryScheduled,
        body: bytes,
        target: str,
        requested_at_ms: int | None,
        traceparent: str | None = None,
    ) -> Retry:
        """The publish a recorded ``RetryScheduled`` asks for."""
        return cls(
            body,
            target,
            retry.next_attempt,
            retry.delay_s,
            retry.due_at,
            requested_at_ms,
            traceparent,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Cannot be processed: park it in the dead-letter queue with the reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class Requeue:
    """Not started and not ours to start now (shutting down): give it back to the queue."""


Outcome = Ack | Retry | DeadLetter | Requeue
