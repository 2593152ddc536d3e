"""Child executions: deterministic ids by parent and call position.

The n-th child a parent calls has the same id in every attempt of that parent,
so a retried parent finds the children its earlier attempts started instead of
starting them again. ``uuid5`` is a hash, not randomness: the engine stays pure.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ricochet.contracts import ChildReused, event_id

CHILD_NAMESPACE = uuid.UUID("0b9a7a52-3d1e-4c57-b0a4-6f3f0e8d2c11")


def child_id(parent_id: str, position: int) -> str:
    """The id of the child a parent calls at ``position`` (0 for its first call)."""
    return uuid.uuid5(CHILD_NAMESPACE, f"{parent_id}/{position}").hex


def reused(
    parent_id: str, attempt: int, position: int, child: str, target: str, now: datetime
) -> ChildReused:
    """Record that attempt ``attempt`` reused child ``child``'s result instead of re-running it."""
    return ChildReused(
        event_id=event_id(parent_id, attempt, f"reused-{position}"),
        execution_id=parent_id,
        attempt=attempt,
        at=now,
        child_id=child,
        position=position,
        target=target,
    )
