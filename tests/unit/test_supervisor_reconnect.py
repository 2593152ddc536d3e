"""A supervisor that loses its lease stands down; its next take-over starts afresh.

The lease is the heartbeat queue's single active consumer (``supervision.lease``).
A lost connection, a closed lease channel or a cancelled consumer makes the
supervisor stop acting at once; a heartbeat that reaches it later, and only then,
makes it take over again. Whether that take-over counts an outage (workers it has
not heard get time to reconnect) depends on whether the lease came with its own
reconnect, or after it stood by while another supervisor held it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
import structlog
from pamqp.commands import Basic
from structlog.testing import capture_logs

from ricochet.engine.vigil import outage_at_take_over
from ricochet.workers.settings import Settings
from ricochet.workers.supervision import supervisor as supervision
from ricochet.workers.supervision.lease import Lease
from ricochet.workers.supervision.reconnects import RECONNECT_WITHIN_S, attendance_at_take_over
from ricochet.workers.supervision.supervisor import Supervisor

SETTINGS = Settings(namespace="t", heartbeat_s=0.5, loss_window_s=3.0)


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def supervisor(connection: Any, monotonic: Clock) -> Supervisor:
    dispatcher = SimpleNamespace(limits=None)
    return Supervisor(
        SETTINGS,
        connection,
        cast(Any, None),
        cast(Any, None),
        cast(Any, dispatcher),
        lambda: datetime(2026, 12, 5, tzinfo=UTC),
        monotonic,
    )


@pytest.mark.parametrize(
    ("lost_at", "back_at", "now", "expected"),
    [
        (None, None, 100.0, False),  # never lost its connection: a supervisor merely died
        (90.0, None, 100.0, True),  # still restoring when the lease came
        (90.0, 80.0, 100.0, True),  # came back before? that was an earlier loss
        (90.0, 99.0, 100.0, True),  # back 1 s, took the lease: the same outage
        (90.0, 92.0, 100.0, False),  # stood by 8 s: another held the lease meanwhile
        (90.0, 97.0, 100.0, True),  # stood by exactly the window
    ],
)
def test_a_take_over_counts_an_outage_only_with_its_own_reconnect(
    lost_at: float | None, back_at: float | None, now: float, expected: bool
) -> None:
    assert expected == outage_at_take_over(now, lost_at, back_at, standby_s=3.0)


def test_a_take_over_after_standing_by_judges_a_silent_worker_in_a_window() -> None:
    """Given a supervisor whose connection was cut at t=100 and back at t=100.3, that stood
    by while another held the lease, when it takes over at t=110 (the other's worker was
    SIGKILLed): a worker it never heard is judged a loss window after the take-over,
    not after an allowance for its own reconnect (main: 21 s more)."""
    connection = SimpleNamespace(reconnected_at=100.3)
    fresh = attendance_at_take_over(SETTINGS, cast(Any, connection), 100.0, 110.0)
    assert fresh.may_judge("killed", 110.0)
    assert fresh.outage_ended is None


def test_a_take_over_with_its_own_reconnect_gives_workers_time() -> None:
    """Given the same cut, when the lease comes as the connection is back (t=100.5): a
    worker not heard since gets its reconnect time before its attempts are judged."""
    connection = SimpleNamespace(reconnected_at=100.3)
    fresh = attendance_at_take_over(SETTINGS, cast(Any, connection), 100.0, 100.5)
    assert not fresh.may_judge("slow", 104.0)
    assert fresh.may_judge("slow", 100.5 + RECONNECT_WITHIN_S + 3.0)
    fresh.heard("quick", 100.6)
    assert fresh.may_judge("quick", 101.0)


def test_a_take_over_hears_nothing_as_a_gap() -> None:
    """Heartbeats heard long ago (before standing down) are no gap for a new take-over:
    its first heartbeat starts no outage."""
    fresh = attendance_at_take_over(SETTINGS, cast(Any, SimpleNamespace()), None, 500.0)
    fresh.heard("a", 500.1)
    assert fresh.outage_ended is None
    assert fresh.may_judge("b", 500.2)


async def test_a_supervisor_that_loses_its_lease_stops_acting_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given an active supervisor judging and checkpointing, when its lease is lost, it
    is no longer active, its judge and checkpoint tasks are cancelled, it says why,
    and it keeps nothing of its take-over."""
    watching = supervisor(SimpleNamespace(reconnected_at=None), Clock())
    watching.active = True
    watching.caught_up.set()
    watching.last_checkpoint = watching.resumed_from = 41
    judging = asyncio.create_task(asyncio.sleep(60))
    watching._judge_task = judging
    checkpointing = watching._checkpoint_task = asyncio.create_task(asyncio.sleep(60))
    with capture_logs() as logs:
        # a fresh logger: the module's may be cached already by an earlier test's worker
        monkeypatch.setattr(supervision, "log", structlog.get_logger("supervisor"))
        watching.stand_down("connection closed")
        await watching._lease.let_go_done()
        watching.stand_down("again")  # a standby has nothing to stand down from
    assert not watching.active
    assert not watching.caught_up.is_set()
    for task in (judging, checkpointing):
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
    assert watching.last_checkpoint is None
    assert watching.resumed_from is None
    said = [(line["event"], line.get("reason")) for line in logs]
    assert [("supervisor.standing_down", "connection closed")] == said


class Holder:
    def __init__(self) -> None:
        self.heartbeats = 0
        self.reasons: list[str] = []

    async def heartbeat(self, message: Any) -> None:
        self.heartbeats += 1

    def stand_down(self, reason: str) -> None:
        self.reasons.append(reason)


class Delivery:
    """A heartbeat delivery whose ack lets something happen meanwhile."""

    def __init__(self, closed: bool = False, meanwhile: Any = None) -> None:
        self.channel = SimpleNamespace(is_closed=closed)
        self._meanwhile = meanwhile

    async def ack(self) -> None:
        if self._meanwhile is not None:
            await self._meanwhile()


def lease(holder: Holder) -> Lease:
    return Lease(cast(Any, SimpleNamespace()), cast(Any, None), holder)


async def test_only_a_heartbeat_on_the_live_channel_proves_the_lease() -> None:
    """A delivery on a channel already lost, or one whose handling straddles the loss of
    the lease, proves nothing; one after it does."""
    holder = Holder()
    held = lease(holder)
    await held._delivered(cast(Any, Delivery(closed=True)))
    assert holder.heartbeats == 0

    async def cut() -> None:
        await held._connection_closed(None, ConnectionError("cut"))

    await held._delivered(cast(Any, Delivery(meanwhile=cut)))
    assert holder.heartbeats == 0
    assert holder.reasons == ["connection closed: ConnectionError('cut')"]
    assert held.lost_at is not None
    await held._delivered(cast(Any, Delivery()))
    assert holder.heartbeats == 1


async def test_a_cancelled_lease_consumer_stands_down_and_others_do_not() -> None:
    holder = Holder()
    held = lease(holder)
    held._tag = "lease-tag"
    await held._cancelled(Basic.Cancel(consumer_tag="another-tag"))
    assert holder.reasons == []
    await held._cancelled(Basic.Cancel(consumer_tag="lease-tag"))
    await held._channel_closed(None, None)
    assert holder.reasons == [
        "lease consumer cancelled by the broker",
        "lease channel closed: None",
    ]
