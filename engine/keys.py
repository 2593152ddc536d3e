"""Idempotency keys inside the de-duplication window (SPEC section 8).

The same key never starts two executions while it is inside the window; a key
re-used after it starts a new one. Keys are kept as the 128-bit digest that
also names their execution (``execution_id_for``): a key of any length costs
the same, and the index can be written to a checkpoint as packed bytes.

Digests sit in buckets by request time, each a sixteenth of the window wide,
so the window moves by dropping whole buckets: memory grows with the keys
inside the window only, never with the length of the log. A key is remembered
for at least the window, and at most one bucket (a sixteenth) longer. Time comes
in as data (seconds since the epoch), as everywhere in the engine.

A trigger with no idempotency key but an AMQP message id is de-duplicated by that
id (with its target), as Celery or Dramatiq users expect: it is an implicit key in
a namespace of its own, so it can never match an explicit key. Its execution id is
the digest, as for a key, and that is what the log says of it: a trigger's request
with no key whose id is a version-5 uuid (never a random, version-4 one) used the
digest its id spells. A trigger with neither starts an execution per publish.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

IDEMPOTENCY_NAMESPACE = uuid.UUID("7c1b3c5e-2f44-4a8f-9a53-4f0b1d1e6a20")
MESSAGE_ID_NAMESPACE = uuid.UUID("efa06ce9-5abd-4063-8ffc-4e0af8d3d60d")
TRIGGER_SOURCE = "trigger"
"""The ``source`` of the requests the trigger intake records."""
BUCKETS = 16
DIGEST_BYTES = 16


_NAMESPACE_BYTES = IDEMPOTENCY_NAMESPACE.bytes
_MESSAGE_ID_BYTES = MESSAGE_ID_NAMESPACE.bytes
_HEX = frozenset("0123456789abcdef")
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_SET = (0x8000 << 48) | (5 << 76)
"""RFC 4122's variant and version-5 bits, as ``uuid.UUID(..., version=5)`` sets them."""


def key_digest(key: str) -> int:
    """The key's 128-bit digest: its uuid5 (a hash, not chance, so every process and
    language agrees), computed as ``uuid.uuid5(...).int`` would be at a fifth of the
    cost: a supervisor taking over from a checkpoint digests every key it holds."""
    return _uuid5(_NAMESPACE_BYTES, key)


def message_digest(target: str, message_id: str) -> int:
    """An unkeyed trigger's implicit key: its message id, for its target (two senders
    numbering their messages 1, 2, 3 to different targets do not collide)."""
    return _uuid5(_MESSAGE_ID_BYTES, f"{target}\x00{message_id}")


def _uuid5(namespace: bytes, name: str) -> int:
    data = namespace + name.encode(errors="surrogatepass")
    digest = hashlib.sha1(data, usedforsecurity=False).digest()
    return (int.from_bytes(digest[:16], "big") & _CLEAR) | _SET


def trigger_digest(key: str | None, target: str, message_id: str | None) -> int | None:
    """What a trigger is de-duplicated by: its idempotency key, else its message id;
    None when it has neither (then every publish of it starts an execution)."""
    if key is not None:
        return key_digest(key)
    if message_id:
        return message_digest(target, message_id)
    return None


def request_digest(key: object, source: object, execution_id: object) -> int | None:
    """The digest a recorded request (its fields as read) holds in the window: its key's,
    or, for a trigger's request with no key, its execution id's when that was derived
    from a message id (``trigger_digest``); None for any other request."""
    if isinstance(key, str):
        return key_digest(key)
    if source != TRIGGER_SOURCE or not isinstance(execution_id, str):
        return None
    if len(execution_id) != DIGEST_BYTES * 2 or not _HEX.issuperset(execution_id):
        return None
    value = int(execution_id, 16)
    return value if value & ~_CLEAR == _SET else None


def execution_id_for_key(key: str) -> str:
    """The execution a key starts: the same id in every language (uuid5 of the key)."""
    return f"{key_digest(key):032x}"


@dataclass(slots=True)
class KeyWindow:
    """Which key digests started an execution within the last ``window_s`` seconds."""

    window_s: float
    buckets: dict[int, set[int]] = field(default_factory=dict)

    @property
    def width_s(self) -> float:
        return self.window_s / BUCKETS

    def bucket_of(self, at_s: float) -> int:
        return math.floor(at_s / self.width_s)

    def add(self, digest: int, at_s: float) -> None:
        """``digest``'s key started an execution at ``at_s``."""
        self.buckets.setdefault(self.bucket_of(at_s), set()).add(digest)

    def __contains__(self, digest: object) -> bool:
        return any(digest in keys for keys in self.buckets.values())

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.buckets.values())

    def expire(self, now_s: float) -> int:
        """Drop the buckets wholly older than the window; returns how many keys went."""
        oldest = self.bucket_of(now_s - self.window_s)
        gone = [bucket for bucket in self.buckets if bucket < oldest]
        dropped = sum(len(self.buckets[bucket]) for bucket in gone)
        for bucket in gone:
            del self.buckets[bucket]
        return dropped

    def packed(self) -> Iterator[tuple[int, bytes]]:
        """Each bucket as (index, its digests as 16 bytes each): for a checkpoint."""
        for bucket, keys in sorted(self.buckets.items()):
            yield bucket, b"".join(digest.to_bytes(DIGEST_BYTES, "big") for digest in keys)

    def load(self, packed: Iterable[tuple[int, bytes]], width_s: float) -> None:
        """Add buckets written by ``packed`` with buckets ``width_s`` wide (a checkpoint
        written under another window setting is re-bucketed by each bucket's start)."""
        for bucket, data in packed:
            keys = self.buckets.setdefault(self.bucket_of(bucket * width_s), set())
            for start in range(0, len(data) - DIGEST_BYTES + 1, DIGEST_BYTES):
                keys.add(int.from_bytes(data[start : start + DIGEST_BYTES], "big"))


class KeyVerdict(Enum):
    """What the trigger intake does with a trigger that carries an idempotency key."""

    START = "start"
    """The key is unused and no one is deciding it: reserve it and start the execution."""
    DUPLICATE = "duplicate"
    """The key started an execution inside the window: ack the trigger, start nothing."""
    WAIT = "wait"
    """Another trigger of the key is being started: wait for its start, then judge again."""


def judge_key(used: bool, deciding: bool) -> KeyVerdict:
    """The idempotency rule: one execution per key inside the window, however copies race."""
    if used:
        return KeyVerdict.DUPLICATE
    return KeyVerdict.WAIT if deciding else KeyVerdict.START
