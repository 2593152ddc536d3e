"""Bytes in and out: orjson to write, pydantic's JSON parser to read and validate.

Decoding is the boundary: anything that comes back from here is a valid model,
and anything that is not raises ``DecodeError`` with a reason fit for a
dead-letter header.

Encoding hands orjson each model's ``__dict__`` instead of ``model_dump()``'s
copy of it: a wire model is plain data (no aliases, custom serialisers or
computed fields; tests/unit/test_encoding.py checks every one), so ``__dict__``
holds the very values ``model_dump(mode="python")`` would return and orjson
writes the same bytes. Events are encoded on the worker's hot path, and this is
four to five times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from ricochet.contracts.base import WireModel
from ricochet.contracts.events import BATCH_ADAPTER, EVENT_ADAPTER, Event, EventBatch
from ricochet.contracts.upcasting import upcast
from ricochet.errors import DecodeError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def encode(model: WireModel) -> bytes:
    """Serialise a wire model to compact JSON."""
    return orjson.dumps(model.__dict__, default=_nested_model)


def _nested_model(value: object) -> dict[str, Any]:
    """orjson's fallback for what it cannot write itself: a model inside a model."""
    if isinstance(value, WireModel):
        return value.__dict__
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def encode_json(value: object) -> bytes:
    """Serialise plain JSON-able data (arguments, results); raises TypeError otherwise."""
    return orjson.dumps(value)


def decode_event(data: bytes | str) -> Event:
    """Parse one event of any known type and version (old versions are upcast)."""
    try:
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as err:
        return _upcast_or_raise(EVENT_ADAPTER, data, upcast, err)


def encode_batch(events: EventBatch | list[Event]) -> bytes:
    """Serialise events recorded together as one JSON array (one stream message)."""
    return orjson.dumps([event.__dict__ for event in events], default=_nested_model)


def decode_batch(data: bytes | str) -> EventBatch:
    """Parse one stream message: a JSON array of events (old versions are upcast)."""
    try:
        return BATCH_ADAPTER.validate_json(data)
    except ValidationError as err:
        return _upcast_or_raise(BATCH_ADAPTER, data, _upcast_all, err)


def _upcast_all(raw: Any) -> Any:
    return [upcast(event) for event in raw] if isinstance(raw, list) else raw


def _upcast_or_raise(
    adapter: TypeAdapter[T], data: bytes | str, change: Callable[[Any], Any], err: ValidationError
) -> T:
    """The slow path, taken only when the fast one failed: upcast old versions, or explain."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise DecodeError(describe(err)) from err
    upcast_raw = change(raw)
    if upcast_raw == raw:
        raise DecodeError(describe(err)) from err
    try:
        return adapter.validate_python(upcast_raw)
    except ValidationError as again:
        raise DecodeError(describe(again)) from again


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
