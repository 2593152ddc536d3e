"""The heartbeat: a worker saying it is alive and which attempts it is running.

Heartbeats are how worker loss is detected (SPEC section 5): an attempt that no
heartbeat has vouched for within the loss window is recorded as lost. They are
signals, not facts: they never go to the event log.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ricochet.contracts.base import UtcDatetime, WireModel


class RunningAttempt(WireModel):
    execution_id: str
    attempt: int = Field(ge=1)


class Heartbeat(WireModel):
    """Sent every heartbeat interval by every worker process."""

    type: Literal["heartbeat.v1"] = "heartbeat.v1"
    worker: str
    at: UtcDatetime
    running: tuple[RunningAttempt, ...] = ()
    stopping: bool = False
