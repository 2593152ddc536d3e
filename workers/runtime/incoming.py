"""A work delivery, read: its headers and body validated, or ``BadMessage`` saying why.

Kept apart from the attempt's processing so that what a worker trusts from a
message (and what it refuses) can be read in one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DEFAULT_LIMITS,
    DUE_AT_HEADER,
    REQUESTED_AT_HEADER,
    Limits,
    WorkMessage,
    decode,
)
from ricochet.errors import BadMessage, DecodeError


@dataclass(frozen=True, slots=True)
class Delivery:
    """A parsed work message and the attempt it is for."""

    work: WorkMessage
    attempt: int
    due_at: float | None
    requested_at_ms: int | None = None
    arrived: float = field(default_factory=time.monotonic)
    """When it was read (monotonic): the log up to then holds whatever it is a copy of."""


def parse(message: AbstractIncomingMessage, limits: Limits = DEFAULT_LIMITS) -> Delivery:
    """Validate headers and body; raises ``BadMessage`` with a reason for a person."""
    size = len(message.body)
    if size > limits.max_work_bytes:
        raise BadMessage(f"body of {size} bytes is over the {limits.max_work_bytes} byte limit")
    headers = message.headers or {}
    attempt = headers.get(ATTEMPT_HEADER, 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise BadMessage(f"header {ATTEMPT_HEADER} must be an int >= 1, got {attempt!r}")
    due_ms = headers.get(DUE_AT_HEADER)
    due_at = due_ms / 1000 if isinstance(due_ms, int) and not isinstance(due_ms, bool) else None
    try:
        work = decode(WorkMessage, message.body)
    except DecodeError as err:
        raise BadMessage(f"invalid work message: {err}") from err
    requested = headers.get(REQUESTED_AT_HEADER)
    requested_ms = (
        requested if isinstance(requested, int) and not isinstance(requested, bool) else None
    )
    return Delivery(work, attempt, due_at, requested_ms)
