"""The supervisor's checkpoint: what it keeps in memory, and the log offset that includes.

A supervisor that takes over loads the latest checkpoint and reads only the
log after it, so its catch-up does not grow with the log (SPEC section 8).
The format is versioned like an event; a checkpoint that cannot be read is
never trusted half-way: the reader falls back to an earlier one, or the log.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ricochet.contracts import ReplyRequested, ReplyV1
from ricochet.contracts.base import UtcDatetime
from ricochet.contracts.codec import describe
from ricochet.engine.live import Live, from_row
from ricochet.engine.replies import Owed
from ricochet.engine.watch import Watch
from ricochet.errors import UnreadableCheckpoint

CHECKPOINT_TYPE = "supervisor_checkpoint.v1"


class KeyBucket(BaseModel):
    """One bucket of the key window: its index and its digests, 16 bytes each, in base64."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    digests: str

    def unpacked(self) -> tuple[int, bytes]:
        return self.index, base64.b64decode(self.digests, validate=True)


class OwedRow(BaseModel):
    """Replies owed for one ended execution: its unsent requests, and the reply if known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: tuple[ReplyRequested, ...]
    reply: ReplyV1 | None = None


class CheckpointHeader(BaseModel):
    """Everything in a checkpoint but the live executions' events, validated whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["supervisor_checkpoint.v1"]
    offset: int = Field(ge=-1)
    at: UtcDatetime
    worker: str
    ended: tuple[str, ...] = ()
    recovered: tuple[tuple[str, int], ...] = ()
    key_width_s: float = Field(gt=0)
    keys: tuple[KeyBucket, ...] = ()
    owed: dict[str, OwedRow] = Field(default_factory=dict)
    """Replies owed (``engine.replies``): an older supervisor refuses a checkpoint with
    them, and falls back to an earlier one or the log, which is always right."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything a new supervisor needs, as of log offset ``offset`` (-1: before any).

    The live executions' events stay as written on the log: the watch validates
    an execution's events when it folds them, as it does for events it reads
    from the log, so here they are only checked for shape.
    """

    header: CheckpointHeader
    live: dict[str, Live]

    @property
    def offset(self) -> int:
        return self.header.offset


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
        "live": watch.rows(),
        "ended": list(watch.ended),
        "recovered": sorted(watch.recovered),
        "key_width_s": watch.keys.width_s,
        "keys": [
            {"index": index, "digests": base64.b64encode(digests).decode()}
            for index, digests in watch.keys.packed()
        ],
    }
    if watch.replies.owed:
        document["owed"] = _owed_rows(watch)
    return orjson.dumps(document)


def _owed_rows(watch: Watch) -> dict[str, object]:
    return {
        execution_id: {
            "requests": [request.model_dump(mode="json") for request in owed.requests.values()],
            "reply": None if owed.reply is None else owed.reply.model_dump(mode="json"),
        }
        for execution_id, owed in watch.replies.owed.items()
    }


def read(body: bytes) -> Checkpoint:
    """Parse a checkpoint; raises ``UnreadableCheckpoint`` whatever is wrong with it."""
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise UnreadableCheckpoint(f"a checkpoint is a JSON object, not {type(document)}")
        rows = document.pop("live", None)
        if not isinstance(rows, dict):
            raise UnreadableCheckpoint("live: not an object of execution ids")
        live = {execution_id: from_row(row) for execution_id, row in rows.items()}
        header = CheckpointHeader.model_validate(document)
        for bucket in header.keys:
            bucket.unpacked()
    except UnreadableCheckpoint:
        raise
    except ValidationError as err:
        raise UnreadableCheckpoint(describe(err)) from err
    except Exception as err:  # bad JSON or base64, overflowing dates: any reason to skip
        raise UnreadableCheckpoint(f"{type(err).__name__}: {err}") from err
    return Checkpoint(header, live)


def restore(
    watch: Watch, checkpoint: Checkpoint, vouched_at: Callable[[str | None], float]
) -> None:
    """Load ``checkpoint`` into a fresh ``watch`` (see ``Watch.restore``)."""
    header = checkpoint.header
    watch.restore(checkpoint.live, header.ended, header.recovered, vouched_at)
    watch.keys.load((bucket.unpacked() for bucket in header.keys), header.key_width_s)
    for execution_id, row in header.owed.items():
        requests = {request.event_id: request for request in row.requests}
        watch.replies.owe(execution_id, Owed(requests, row.reply))


@dataclass(slots=True)
class Cadence:
    """When the next checkpoint is worth writing.

    A take-over reads the newest checkpoint and then the log after it, so the
    two costs trade: a checkpoint is written once the log read since the last
    one is at least a quarter of that one's size (and the offset moved). A big
    backlog of live executions then makes checkpoints rarer, never the
    supervisor's event loop busier than a quarter of what it reads.
    """

    offset: int | None = None
    size: int = 0
    read_since: int = 0

    def read(self, size: int) -> None:
        self.read_since += size

    def due(self, offset: int | None) -> bool:
        return offset is not None and offset != self.offset and self.read_since >= self.size / 4

    def written(self, offset: int, size: int) -> None:
        self.offset, self.size, self.read_since = offset, size, 0
