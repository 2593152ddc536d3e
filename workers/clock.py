"""The wall clock, passed in (never read from a global) so tests can choose the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, timezone-aware: every time Ricochet records is UTC."""
    return datetime.now(UTC)
