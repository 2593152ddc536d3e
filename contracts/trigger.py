"""The trigger message: the public contract for starting work from any language.

Publish it to the topic exchange ``<namespace>.triggers`` with the target name as
routing key and content type ``application/json``. Its JSON Schema ships as
``contracts/schemas/trigger.v1.json``. A new shape would be a new version that
old publishers keep working beside.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from ricochet.contracts.base import WireModel
from ricochet.contracts.limits import DEFAULT_LIMITS, ReadableJson, Target

TRIGGER_CONTENT_TYPE = "application/json"
MAX_TRIGGER_BYTES = DEFAULT_LIMITS.max_trigger_bytes
"""Bodies above 1 MiB are dead-lettered: a trigger names work, it does not carry data."""


def _exactly_an_integer(value: Any) -> Any:
    """No coercion the schema does not allow: ``true`` and ``1.0`` are not ``const: 1``
    to a JSON Schema validator, so they are not to Ricochet either."""
    if type(value) is not int:
        raise ValueError(f"version must be the integer 1, not {type(value).__name__}")
    return value


class TriggerV1(WireModel):
    """Start ``target(*args, **kwargs)``; the same ``idempotency_key`` starts it once."""

    version: Annotated[Literal[1], BeforeValidator(_exactly_an_integer)] = 1
    target: Target
    args: tuple[ReadableJson, ...] = ()
    kwargs: dict[str, ReadableJson] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=400)
