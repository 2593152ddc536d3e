"""The supervisor's own connection coming back: a sign that the workers' went too.

A broker restart, a node stopping or cut connections take the supervisor's
connection as well as the workers'. Heartbeats alone do not always show it: a
failover to another node takes half a second, less than the three heartbeats a
gap needs, while a worker of the same node may still be restoring its channels.
So the supervisor's own reconnect counts as an outage (``engine.vigil.Attendance``).
"""

from __future__ import annotations

import time

from aio_pika.abc import AbstractRobustConnection

from ricochet.workers.amqp.broker import CONNECT_TIMEOUT_S
from ricochet.workers.amqp.failover import JITTER, ROUND_PAUSES_S

RECONNECT_WITHIN_S = ROUND_PAUSES_S[-1] * (1 + JITTER) + CONNECT_TIMEOUT_S
"""The longest a worker's connection takes to come back once a broker is up again: its
longest wait between tries (``ricochet.workers.amqp.failover``), plus one whole try (a try
begun while the broker boots can take its full timeout). The loss window after it covers
the restoring of channels and the first heartbeat. Only a worker not heard since an
outage gets it: after a broker restart, one that died meanwhile is judged this much later."""


class OwnReconnects:
    """When this process's connection last came back, and whether that is news."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._known: float | None = None

    def last(self) -> float | None:
        """When the connection last came back (monotonic seconds), if it ever did."""
        back = getattr(self._connection, "reconnected_at", None)
        return back if isinstance(back, float) else None

    def lately(self, window_s: float) -> bool:
        """Did it come back within ``window_s``? Then so may the others just now."""
        back = self.last()
        return back is not None and time.monotonic() - back < window_s

    def seen(self) -> None:
        """Whatever came before is known (a take-over has taken it into account)."""
        self._known = self.last()

    def news(self) -> bool:
        """Has it come back since last asked (or since ``seen``)?"""
        back = self.last()
        if back is None or back == self._known:
            return False
        self._known = back
        return True
