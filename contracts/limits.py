"""The limits every writer and reader of Ricochet's JSON shares (SPEC 7.9). Pure: no I/O.

Nothing may be written that a reader cannot read back, so the writers check
what they are handed against the same numbers the readers accept:

- **Nesting depth** of any user value (an argument, a keyword argument, a
  result). pydantic's JSON parser reads 200 levels in all and orjson writes
  255; the envelope around a user value takes up to three (the stream
  message's array, the event's object, the ``args`` array), and a checkpoint
  or a future envelope may add more. ``max_json_depth`` (100) leaves about
  half of what pydantic reads for them.
- **Numbers** that travel unchanged: integers in orjson's range
  (``-2**63 .. 2**64 - 1``; past it orjson cannot write them, and a printer
  using it crashes), and finite floats (orjson writes NaN and infinities as
  ``null``, silently changing the value).
- **Sizes**, in encoded bytes: the arguments of one execution, a result, a
  trigger's body, a heartbeat, and one group-commit stream message.
- **Times** (SPEC 7.12): every time that comes from outside (an event's or a
  heartbeat's time, a checkpoint's, a work message's request and due times and
  AMQP timestamp) lies in ``MIN_TIME .. MAX_TIME``: from 1970 (Unix time 0) up
  to the end of year 9998. A year of calendar is left above it, so that adding
  a delay (at most ``MAX_DELAY_S``), a clock skew or a loss window to any time
  read never overflows ``datetime``; and a retry's delay is bounded by it.

The wire models validate depth and numbers on every parse (``ReadableJson``),
so a message breaking them is refused at the boundary, by name. Sizes are
checked by writers, where the bytes are made. Settings may lower any limit for
a deployment's writers, never raise one above ``DEFAULT_LIMITS``, which is what
readers accept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field, JsonValue

from ricochet.errors import NotReadable, TooLarge

KIB = 1024
MIB = 1024 * KIB

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
"""The integers orjson writes: signed 64-bit below zero, unsigned 64-bit above."""

WORK_ENVELOPE_BYTES = 64 * KIB
"""What a work message may carry besides its arguments (ids, target)."""

MAX_ERROR_CHARS = 16 * KIB
"""An error's message, and separately its traceback, are cut to this many characters."""

MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest time Ricochet reads or writes: Unix time 0 (AMQP timestamps are unsigned)."""
MAX_TIME = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest: the end of year 9998, a year short of ``datetime.max``, so arithmetic
on a time read (a delay, a skew, a window added) stays inside the calendar."""
MIN_TIME_MS = 0
MAX_TIME_MS = (MAX_TIME - MIN_TIME) // (MAX_TIME.resolution * 1000)
"""The same range as integer Unix milliseconds (the work message's time headers)."""
MAX_DELAY_S = 365 * 24 * 3600.0
"""The longest delay a retry may wait (one year): within the calendar's spare year."""
MAX_ATTEMPT = 2**31 - 1
"""The highest attempt number a header may name (far above any sane policy)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """One set of limits (see the module docstring); the defaults are what readers accept."""

    max_json_depth: int = 100
    max_args_bytes: int = 1 * MIB
    max_result_bytes: int = 4 * MIB
    max_trigger_bytes: int = 1 * MIB
    max_heartbeat_bytes: int = 1 * MIB
    max_message_bytes: int = 16 * MIB
    """One group-commit stream message; a single caller's events that would not fit
    are refused alone (a success carries its result twice: 2 x 4 MiB fits)."""

    @property
    def max_work_bytes(self) -> int:
        """A work message's body: its arguments and a bounded envelope."""
        return self.max_args_bytes + WORK_ENVELOPE_BYTES


DEFAULT_LIMITS = Limits()


def check_value(value: Any, limits: Limits = DEFAULT_LIMITS, what: str = "value") -> None:
    """Raise ``NotReadable`` if ``value`` nests too deep or holds a number JSON would change.

    Iterative (no recursion limit to hit) and stops at the first level past the
    limit, so a hostile value costs no more than a legal one.
    """
    if value is None or type(value) is str or type(value) is bool:
        return
    max_depth = limits.max_json_depth
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | tuple | dict):
            if depth >= max_depth:
                raise NotReadable(f"{what} is nested deeper than the limit of {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise NotReadable(f"{what} holds an integer outside the 64-bit range")
        elif isinstance(item, float) and not math.isfinite(item):
            raise NotReadable(f"{what} holds {item!r}, which JSON cannot carry")


def check_json(
    value: Any, limits: Limits = DEFAULT_LIMITS, *, what: str = "value", max_bytes: int
) -> int:
    """``check_value``, then the encoded size against ``max_bytes``; returns the size."""
    check_value(value, limits, what)
    size = _encoded_size(value, what)
    if size > max_bytes:
        raise TooLarge(f"{what} is {size} bytes as JSON, over the limit of {max_bytes}")
    return size


def _encoded_size(value: Any, what: str) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError as err:
        raise NotReadable(f"{what} cannot be written as JSON: {err}") from err


def check_args(
    args: Sequence[Any], kwargs: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
) -> None:
    """The arguments of one execution: each readable, all together within ``max_args_bytes``."""
    for position, arg in enumerate(args):
        check_value(arg, limits, f"argument {position}")
    for name, arg in kwargs.items():
        check_value(arg, limits, f"keyword argument {name[:60]!r}")
    size = _encoded_size(list(args), "args") + _encoded_size(dict(kwargs), "kwargs")
    if size > limits.max_args_bytes:
        raise TooLarge(
            f"args and kwargs are {size} bytes as JSON, over the limit of {limits.max_args_bytes}"
        )


def check_result(result: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """A function's result, before it is recorded."""
    check_json(result, limits, what="the result", max_bytes=limits.max_result_bytes)


def _readable(value: JsonValue) -> JsonValue:
    check_value(value, DEFAULT_LIMITS)
    return value


ReadableJson = Annotated[JsonValue, AfterValidator(_readable)]

MAX_ROUTING_KEY_BYTES = 255
"""An AMQP routing key is a short string: 255 bytes of UTF-8 at most. A target is the
routing key of its triggers and of its work, so no target may be longer."""


def check_target(target: str) -> str:
    """Raise ``NotReadable`` unless ``target`` fits a routing key (in UTF-8 bytes)."""
    size = len(target.encode(errors="surrogatepass"))
    if size > MAX_ROUTING_KEY_BYTES:
        raise NotReadable(
            f"target is {size} bytes as UTF-8; a routing key holds {MAX_ROUTING_KEY_BYTES}"
        )
    return target


Target = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ROUTING_KEY_BYTES,
        description="The target's name; at most 255 bytes as UTF-8 (an AMQP routing key).",
    ),
    AfterValidator(check_target),
]
"""A target name in a message that is routed by it (trigger, work)."""
"""A user value in a wire model: any JSON within the readers' depth and number limits."""


def check_time(value: datetime, what: str = "a time") -> datetime:
    """``value`` if it is aware and in ``MIN_TIME .. MAX_TIME``; else ``NotReadable``, by name.

    A time at the edge of the calendar can overflow when moved to UTC (``9999-12-31T23:59:59
    -14:00``): that is out of range too, never an ``OverflowError``.
    """
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else None
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not MIN_TIME <= utc <= MAX_TIME:
        raise NotReadable(f"{what} {value.isoformat()} is outside {_RANGE}")
    return utc


def check_time_ms(value: int, what: str = "a time") -> int:
    """``value`` (integer Unix milliseconds) if it is in the range; else ``NotReadable``."""
    if not MIN_TIME_MS <= value <= MAX_TIME_MS:
        raise NotReadable(f"{what} {value} ms is outside {_RANGE} ({MIN_TIME_MS}..{MAX_TIME_MS})")
    return value


_RANGE = "the range Ricochet reads (1970-01-01 to 9998-12-31, UTC)"


def cut(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` writable as UTF-8 JSON and at most ``limit`` characters (head and tail kept)."""
    if len(text) > limit:
        half = limit // 2
        dropped = len(text) - 2 * half
        text = f"{text[:half]}\n[... {dropped} characters cut ...]\n{text[-half:]}"
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode(errors="replace").decode()
    return text
