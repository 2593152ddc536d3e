"""The reply: how a trigger's sender, in any language, learns how its execution ended.

A trigger published with the AMQP ``reply_to`` property (and, if it likes,
``correlation_id``) gets one ``reply.v1`` message when its execution ends,
published to the default exchange with ``reply_to`` as routing key and the same
``correlation_id``. A reply lost on the way is published again, so a receiver
may see one twice: it de-duplicates by ``execution_id``. Its JSON Schema ships
as ``contracts/schemas/reply.v1.json``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ricochet.contracts.base import UtcDatetime, WireModel
from ricochet.contracts.failure import ErrorInfo, FailureCause
from ricochet.contracts.limits import ReadableJson

REPLY_TYPE = "reply.v1"
"""The AMQP ``type`` property of a reply, and its body's ``type``."""

MAX_REPLY_ADDRESS_CHARS = 255
"""``reply_to`` and ``correlation_id`` are AMQP short strings: 255 bytes at most."""


class ReplyV1(WireModel):
    """The end of one execution: its result, or its final error."""

    type: Literal["reply.v1"] = "reply.v1"
    execution_id: str
    target: str
    status: Literal["succeeded", "failed", "cancelled"]
    result: ReadableJson = None
    """The function's return value (``succeeded``); null otherwise."""
    error: ErrorInfo | None = None
    """The final error (``failed``; ``cancelled`` when a cancel stopped it); null otherwise."""
    cause: FailureCause | None = None
    attempts: int = Field(ge=0)
    ended_at: UtcDatetime | None = None
