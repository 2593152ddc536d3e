"""The supervisor's own reconnect counts as an outage, though heartbeats show no gap.

A failover to another node takes half a second: less than the three heartbeats
``Attendance`` needs to notice a gap. The workers that were on the stopped node
may take longer to restore their channels; the supervisor, knowing its own
connection came back, gives each worker it has not heard since time to reconnect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from ricochet.workers.settings import Settings
from ricochet.workers.supervision.reconnects import RECONNECT_WITHIN_S
from ricochet.workers.supervision.supervisor import Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def supervisor(connection: Any, monotonic: Clock) -> Supervisor:
    settings = Settings(namespace="t", heartbeat_s=0.5, loss_window_s=3.0)
    dispatcher = SimpleNamespace(limits=None)
    return Supervisor(
        settings,
        connection,
        cast(Any, None),
        cast(Any, None),
        cast(Any, dispatcher),
        lambda: datetime(2026, 12, 5, tzinfo=UTC),
        monotonic,
    )


async def test_a_worker_not_heard_since_the_supervisor_reconnected_gets_time() -> None:
    """Given heartbeats from a and b until t=10, when the supervisor's connection comes
    back at t=10.6 and only a is heard at t=10.8: b is not judged at t=14 (three
    seconds later, a loss window), only once its reconnect time has passed too."""
    monotonic, connection = Clock(), SimpleNamespace(reconnected_at=None)
    watching = supervisor(connection, monotonic)
    watching.attendance.heard("a", 10.0)
    watching.attendance.heard("b", 10.0)
    await watching.judge()

    connection.reconnected_at = 10.6
    monotonic.now = 10.7
    await watching.judge()
    assert not watching.attendance.heard("a", 10.8), "heartbeats showed no gap"

    assert watching.attendance.may_judge("a", 14.0)
    assert not watching.attendance.may_judge("b", 14.0)
    assert watching.attendance.may_judge("b", 10.7 + RECONNECT_WITHIN_S + 3.0)


async def test_a_reconnect_is_one_outage_not_one_per_judgement() -> None:
    monotonic, connection = Clock(), SimpleNamespace(reconnected_at=5.0)
    watching = supervisor(connection, monotonic)
    watching.attendance.heard("a", 10.0)
    await watching.judge()
    first = watching.attendance.outage_ended
    monotonic.now = 11.0
    await watching.judge()
    assert watching.attendance.outage_ended == first
