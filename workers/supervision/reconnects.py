"""The supervisor's own connection coming back: a sign that the workers' went too.

A broker restart, a node stopping or cut connections take the supervisor's
connection as well as the workers'. Heartbeats alone do not always show it: a
failover to another node takes half a second, less than the three heartbeats a
gap needs, while a worker of the same node may still be restoring its channels.
A supervisor that loses its connection stands down (``lease``); one that takes the
lease as its connection comes back counts the outage for every worker it has not
heard since (``engine.vigil.outage_at_take_over``, ``Attendance``). One that stood
by after coming back does not: another held the lease meanwhile, so the outage is
over, and a worker silent now is judged from its silence alone.
"""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection

from ricochet.engine.vigil import Attendance, outage_at_take_over
from ricochet.workers.amqp.broker import CONNECT_TIMEOUT_S
from ricochet.workers.amqp.failover import JITTER, ROUND_PAUSES_S
from ricochet.workers.settings import Settings

RECONNECT_WITHIN_S = ROUND_PAUSES_S[-1] * (1 + JITTER) + CONNECT_TIMEOUT_S
"""The longest a worker's connection takes to come back once a broker is up again: its
longest wait between tries (``ricochet.workers.amqp.failover``), plus one whole try (a try
begun while the broker boots can take its full timeout). The loss window after it covers
the restoring of channels and the first heartbeat. Only a worker not heard since an
outage gets it: after a broker restart, one that died meanwhile is judged this much later."""


def reconnected_at(connection: AbstractRobustConnection) -> float | None:
    """When (monotonic) the connection last came back after a loss, if it ever did
    (``FailoverConnection.reconnected_at``: set once its channels are restored)."""
    back = getattr(connection, "reconnected_at", None)
    return back if isinstance(back, float) else None


def attendance(settings: Settings) -> Attendance:
    return Attendance(settings.heartbeat_s, settings.loss_window_s, RECONNECT_WITHIN_S)


def attendance_at_take_over(
    settings: Settings, connection: AbstractRobustConnection, lost_at: float | None, now: float
) -> Attendance:
    """A take-over hears every worker anew: a silence heard while standing by is no gap.
    Only one that comes with this process's own reconnect (its connection lost at
    ``lost_at``; ``engine.vigil.outage_at_take_over``, standing by for at most a loss
    window) counts an outage, so the workers it has not heard yet get time to reconnect."""
    fresh = attendance(settings)
    back = reconnected_at(connection)
    if outage_at_take_over(now, lost_at, back, settings.loss_window_s):
        fresh.outage(now)
    return fresh
