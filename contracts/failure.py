"""How a failed attempt is described on the wire."""

from __future__ import annotations

from enum import StrEnum

from ricochet.contracts.base import WireModel


class FailureCause(StrEnum):
    """Why an attempt failed (SPEC section 2, 'what counts as a failure')."""

    EXCEPTION = "exception"
    WORKER_LOST = "worker_lost"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    """The request could not be run at all (say, no worker serves its target)."""
    RESULT_TOO_LARGE = "result_too_large"
    """The function returned, but its result is over the result size limit
    (``contracts.limits``): it is not recorded, and the attempt follows its policy."""
    RESULT_NOT_READABLE = "result_not_readable"
    """The function returned something JSON would not carry back as it was (nested too
    deep, an integer past 64 bits, NaN): not recorded; the attempt follows its policy.
    Added to ``attempt_failed.v1`` / ``execution_failed.v1`` as new enum values: older
    readers that do not know them refuse such events, newer ones read every old event."""
    NOT_RETRYABLE = "not_retryable"
    """The function raised an exception its task says is not worth retrying (``dont_retry=``,
    or not one of ``retry_on=``): the execution ends at once, whatever retries are left.
    A new enum value, like the two above."""


class ErrorInfo(WireModel):
    """A remote error: enough for a waiter to re-raise it and a person to read it."""

    type: str
    message: str
    traceback: str = ""
