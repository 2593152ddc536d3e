"""The work message: what sits on a work queue (and in a delay queue) for one attempt.

The body is the same bytes for every attempt of an execution; the attempt
number travels in Ricochet's own header, never derived from ``x-death``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ricochet.contracts.base import WireModel
from ricochet.contracts.limits import ReadableJson, Target

ATTEMPT_HEADER = "ricochet-attempt"
"""The attempt this delivery is for (1 for the first run)."""

DUE_AT_HEADER = "ricochet-due-at-ms"
"""When the attempt is due, as integer Unix milliseconds (AMQP floats are 32-bit)."""

REQUESTED_AT_HEADER = "ricochet-requested-at-ms"
"""When the execution was requested (integer Unix ms): where a retried parent starts
looking in the log for the children its earlier attempts started."""

REASON_HEADER = "ricochet-dead-letter-reason"
"""Why a message was dead-lettered, in words a person can act on."""

SOURCE_QUEUE_HEADER = "ricochet-dead-letter-source"
"""Where a dead-lettered message was taken from."""

ORIGINAL_BYTES_HEADER = "ricochet-original-bytes"
"""On a body Ricochet cut when dead-lettering it: the original body's size in bytes."""

ORIGINAL_SHA256_HEADER = "ricochet-original-sha256"
"""On a body Ricochet cut when dead-lettering it: the whole original body's SHA-256 (hex)."""

EXECUTION_HEADER = "ricochet-execution-id"
"""On a cut work body: its execution, which the supervisor can no longer read from it."""


class WorkMessage(WireModel):
    """Run ``target(*args, **kwargs)`` as part of ``execution_id``."""

    type: Literal["work.v1"] = "work.v1"
    execution_id: str = Field(min_length=1)
    target: Target
    args: tuple[ReadableJson, ...] = ()
    kwargs: dict[str, ReadableJson] = Field(default_factory=dict)
    parent_id: str | None = None
