"""How a failed attempt is described on the wire."""

from __future__ import annotations

from enum import StrEnum

from contracts.base import WireModel


class FailureCause(StrEnum):
    """Why an attempt failed (SPEC section 2, 'what counts as a failure')."""

    EXCEPTION = "exception"
    WORKER_LOST = "worker_lost"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    """The request could not be run at all (say, no worker serves its target)."""


class ErrorInfo(WireModel):
    """A remote error: enough for a waiter to re-raise it and a person to read it."""

    type: str
    message: str
    traceback: str = ""
