"""The base every wire model shares: frozen, strict about unknown fields, UTC times.

Every time on the wire is in the one range that writers and readers share
(``contracts.limits.MIN_TIME .. MAX_TIME``, SPEC 7.9 and 7.12): a time outside it
makes its message unreadable, by name, at the boundary, so no reader ever does
arithmetic on a time at the edge of the calendar.

Wire models are contracts with other processes and other languages, so they
refuse what they do not know (``extra="forbid"``) instead of guessing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, JsonValue

from ricochet.contracts.limits import check_time


def _to_utc(value: datetime) -> datetime:
    """Events are compared and sorted by time: keep every one in UTC.

    A zone that is merely at offset 0 today (Europe/London in winter) is not UTC:
    arithmetic on it would follow its clock changes. Out of range (or overflowing when
    moved to UTC): ``NotReadable``, a ``ValueError``, so pydantic reports it by field.
    """
    return check_time(value)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

Json = JsonValue
"""Any JSON value: what arguments and results may be (never pickle)."""


class WireModel(BaseModel):
    """A frozen, closed record that crosses a process boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")
