"""The trigger message: the public contract for starting work from any language.

Publish it to the topic exchange ``<namespace>.triggers`` with the target name as
routing key and content type ``application/json``. Its JSON Schema ships as
``contracts/schemas/trigger.v1.json``. A new shape would be a new version that
old publishers keep working beside.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ricochet.contracts.base import WireModel
from ricochet.contracts.limits import DEFAULT_LIMITS, ReadableJson

TRIGGER_CONTENT_TYPE = "application/json"
MAX_TRIGGER_BYTES = DEFAULT_LIMITS.max_trigger_bytes
"""Bodies above 1 MiB are dead-lettered: a trigger names work, it does not carry data."""


class TriggerV1(WireModel):
    """Start ``target(*args, **kwargs)``; the same ``idempotency_key`` starts it once."""

    version: Literal[1] = 1
    target: str = Field(min_length=1, max_length=400)
    args: tuple[ReadableJson, ...] = ()
    kwargs: dict[str, ReadableJson] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=400)
