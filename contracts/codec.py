"""Bytes in and out: orjson to write, pydantic's JSON parser to read and validate.

Decoding is the boundary: anything that comes back from here is a valid model,
and anything that is not raises ``DecodeError`` with a reason fit for a
dead-letter header.
"""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from contracts.events import BATCH_ADAPTER, EVENT_ADAPTER, Event, EventBatch

M = TypeVar("M", bound=BaseModel)


class DecodeError(ValueError):
    """The bytes are not JSON, or not the expected shape: bad input, never retried."""


def encode(model: BaseModel) -> bytes:
    """Serialise a wire model to compact JSON."""
    return orjson.dumps(model.model_dump(mode="python"))


def encode_json(value: object) -> bytes:
    """Serialise plain JSON-able data (arguments, results); raises TypeError otherwise."""
    return orjson.dumps(value)


def decode_event(data: bytes | str) -> Event:
    """Parse one event of any known type and version."""
    try:
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as err:
        raise DecodeError(describe(err)) from err


def encode_batch(events: EventBatch | list[Event]) -> bytes:
    """Serialise events recorded together as one JSON array (one stream message)."""
    return orjson.dumps([event.model_dump(mode="python") for event in events])


def decode_batch(data: bytes | str) -> EventBatch:
    """Parse one stream message: a JSON array of events."""
    try:
        return BATCH_ADAPTER.validate_json(data)
    except ValidationError as err:
        raise DecodeError(describe(err)) from err


def decode(model: type[M], data: bytes | str) -> M:
    """Parse ``data`` as ``model``."""
    try:
        return model.model_validate_json(data)
    except ValidationError as err:
        raise DecodeError(describe(err)) from err


def describe(err: ValidationError) -> str:
    """A one-line, bounded summary of what was wrong, for headers and logs."""
    parts = []
    for item in err.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    more = err.error_count() - len(parts)
    suffix = f" (+{more} more)" if more > 0 else ""
    return one_line("; ".join(parts))[:900] + suffix


def one_line(text: str) -> str:
    """Input can smuggle line breaks into a reason; headers and log lines want one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
