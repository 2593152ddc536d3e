"""The supervisor's checkpoint: what it keeps in memory, and the log offset that includes.

A supervisor that takes over loads the latest checkpoint and reads only the
log after it, so its catch-up does not grow with the log (SPEC section 8).
The format is versioned like an event; a checkpoint that cannot be read is
never trusted half-way: the reader falls back to an earlier one, or the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.base import UtcDatetime
from contracts.codec import describe
from engine import ExecutionState
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
    executions: tuple[ExecutionState, ...]
    ended: tuple[str, ...] = ()
    scheduled_by: dict[str, str | None] = Field(default_factory=dict)
    recovered: tuple[tuple[str, int], ...] = ()
    key_width_s: float = Field(gt=0)
    keys: tuple[KeyBucket, ...] = ()


def take(watch: Watch, offset: int, at: datetime, worker: str) -> bytes:
    """The checkpoint of ``watch`` as of ``offset``, as bytes (taken in one go, so no
    event can slip in between the state and the offset it claims)."""
    checkpoint = Checkpoint(
        offset=offset,
        at=at,
        worker=worker,
        executions=tuple(watch.live()),
        ended=tuple(watch.ended),
        scheduled_by=dict(watch.scheduled_by),
        recovered=tuple(sorted(watch.recovered)),
        key_width_s=watch.keys.width_s,
        keys=tuple(KeyBucket(index=i, digests=d) for i, d in watch.keys.packed()),
    )
    return checkpoint.model_dump_json().encode()


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
    watch.restore(
        checkpoint.executions,
        checkpoint.ended,
        checkpoint.scheduled_by,
        checkpoint.recovered,
        now,
    )
    watch.keys.load(((b.index, b.digests) for b in checkpoint.keys), checkpoint.key_width_s)
