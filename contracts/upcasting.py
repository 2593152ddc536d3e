"""Upcasters: old event versions read as the current ones.

Stored events are never rewritten. When a shape changes, the model gets a new
``type`` version and an upcaster here turns the old JSON into the new before
validation. Chains run until the type has no upcaster left (v1 -> v2 -> ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Raw = dict[str, Any]
Upcaster = Callable[[Raw], Raw]


def requested_v1_to_v2(event: Raw) -> Raw:
    """v2 added ``rerun_of``: a v1 request re-ran nothing."""
    return {**event, "type": "execution_requested.v2", "rerun_of": None}


def started_v1_to_v2(event: Raw) -> Raw:
    """v2 added ``claim``: a v1 start named no try (it is the first in log order anyway)."""
    return {**event, "type": "attempt_started.v2", "claim": None}


UPCASTERS: dict[str, Upcaster] = {
    "execution_requested.v1": requested_v1_to_v2,
    "attempt_started.v1": started_v1_to_v2,
}


def upcast(event: Any) -> Any:
    """The current version of one raw event (anything else is returned as it is)."""
    while isinstance(event, dict) and event.get("type") in UPCASTERS:
        event = UPCASTERS[event["type"]](event)
    return event


def latest_type(type_: str) -> str:
    """The type an event of ``type_`` is read as today."""
    return str(upcast({"type": type_})["type"])
