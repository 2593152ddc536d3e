"""The supervisor's checkpoint: what it keeps in memory, and the log offset that includes.

A supervisor that takes over loads the latest checkpoint and reads only the
log after it, so its catch-up does not grow with the log (SPEC section 8).
The format is versioned like an event; a checkpoint that cannot be read is
never trusted half-way: the reader falls back to an earlier one, or the log.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.base import UtcDatetime
from contracts.codec import describe
from engine.watch import Watch

CHECKPOINT_TYPE = "supervisor_checkpoint.v1"


class UnreadableCheckpoint(ValueError):
    """The bytes are not a checkpoint this version can trust."""


class KeyBucket(BaseModel):
    """One bucket of the key window: its index and its digests, 16 bytes each."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )

    index: int
    digests: bytes


class Checkpoint(BaseModel):
    """Everything a new supervisor needs, as of log offset ``offset`` (-1: before any)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["supervisor_checkpoint.v1"] = "supervisor_checkpoint.v1"
    offset: int = Field(ge=-1)
    at: UtcDatetime
    worker: str
    live: dict[str, list[dict[str, Any]]]
    """Each live execution's events as read from the log (validated when folded)."""
    ended: tuple[str, ...] = ()
    recovered: tuple[tuple[str, int], ...] = ()
    key_width_s: float = Field(gt=0)
    keys: tuple[KeyBucket, ...] = ()


def take(watch: Watch, offset: int, at: datetime, worker: str) -> bytes:
    """The checkpoint of ``watch`` as of ``offset``, as bytes, taken in one go (no event
    can slip in between the state and the offset it claims). Written with orjson:
    the live events are already plain JSON, and validating them again on every
    checkpoint would cost the busy worker the time the lazy watch saves it."""
    document = {
        "type": CHECKPOINT_TYPE,
        "offset": offset,
        "at": at.isoformat(),
        "worker": worker,
        "live": watch.events_of_live(),
        "ended": list(watch.ended),
        "recovered": sorted(watch.recovered),
        "key_width_s": watch.keys.width_s,
        "keys": [
            {"index": index, "digests": base64.b64encode(digests).decode()}
            for index, digests in watch.keys.packed()
        ],
    }
    return orjson.dumps(document)


def read(body: bytes) -> Checkpoint:
    """Parse a checkpoint; raises ``UnreadableCheckpoint`` whatever is wrong with it."""
    try:
        return Checkpoint.model_validate_json(body)
    except ValidationError as err:
        raise UnreadableCheckpoint(describe(err)) from err
    except Exception as err:  # overflowing dates, recursion: any reason is a reason to skip
        raise UnreadableCheckpoint(f"{type(err).__name__}: {err}") from err


def restore(watch: Watch, checkpoint: Checkpoint, now: float) -> None:
    """Load ``checkpoint`` into a fresh ``watch`` (``now``: monotonic seconds)."""
    watch.restore(checkpoint.live, checkpoint.ended, checkpoint.recovered, now)
    watch.keys.load(((b.index, b.digests) for b in checkpoint.keys), checkpoint.key_width_s)
