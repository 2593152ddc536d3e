"""The base every wire model shares: frozen, strict about unknown fields, UTC times.

Wire models are contracts with other processes and other languages, so they
refuse what they do not know (``extra="forbid"``) instead of guessing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, JsonValue


def _to_utc(value: datetime) -> datetime:
    """Events are compared and sorted by time: keep every one in UTC.

    A zone that is merely at offset 0 today (Europe/London in winter) is not UTC:
    arithmetic on it would follow its clock changes.
    """
    return value if value.tzinfo is UTC else value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

Json = JsonValue
"""Any JSON value: what arguments and results may be (never pickle)."""


class WireModel(BaseModel):
    """A frozen, closed record that crosses a process boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")
