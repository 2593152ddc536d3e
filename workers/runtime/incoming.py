"""A work delivery, read: its headers and body validated, or ``BadMessage`` saying why.

Kept apart from the attempt's processing so that what a worker trusts from a
message (and what it refuses) can be read in one place. Every number and time
in a header, and the message's AMQP timestamp, is range-checked here against
the limits readers share (``contracts.limits``, SPEC 7.12): one out of range is
dead-lettered with the reason, so nothing after this ever computes with it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DEFAULT_LIMITS,
    DUE_AT_HEADER,
    MAX_ATTEMPT,
    REQUESTED_AT_HEADER,
    Limits,
    WorkMessage,
    check_time,
    check_time_ms,
    decode,
)
from ricochet.errors import BadMessage, DecodeError, NotReadable


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
    given = headers.get(ATTEMPT_HEADER, 1)
    attempt = _int(given)
    if attempt is None or not 1 <= attempt <= MAX_ATTEMPT:
        raise BadMessage(f"header {ATTEMPT_HEADER} must be an int 1..{MAX_ATTEMPT}, got {given!r}")
    due_ms = _time_ms(headers, DUE_AT_HEADER)
    requested_ms = _time_ms(headers, REQUESTED_AT_HEADER)
    _check_timestamp(message)
    try:
        work = decode(WorkMessage, message.body)
    except DecodeError as err:
        raise BadMessage(f"invalid work message: {err}") from err
    due_at = None if due_ms is None else due_ms / 1000
    return Delivery(work, attempt, due_at, requested_ms)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time_ms(headers: Mapping[str, Any], name: str) -> int | None:
    """A time header: integer Unix ms in range; absent, or not an integer, is no time
    (as before: Ricochet writes integers, and falls back to the message's timestamp)."""
    value = _int(headers.get(name))
    if value is None:
        return None
    try:
        return check_time_ms(value, f"header {name}")
    except NotReadable as err:
        raise BadMessage(str(err)) from err


def _check_timestamp(message: AbstractIncomingMessage) -> None:
    """The AMQP timestamp is where a copy's look-up in the log starts: in range, or refused."""
    if message.timestamp is None:
        return
    try:
        check_time(message.timestamp, "the message's timestamp")
    except NotReadable as err:
        raise BadMessage(str(err)) from err
