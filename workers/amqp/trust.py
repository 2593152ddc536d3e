"""Who wrote a stream message, and whether this process's readers believe it.

Writing: every event and checkpoint message carries AMQP ``user_id`` = the user
name its connection logged in as (``writer_of``). RabbitMQ refuses the publish
when they differ, so the property is proof of the writer, which a header or a
field in the body is not.

Reading: each connection made by ``broker.connect`` holds the ``EventGate`` of
its process's ``event_writers`` setting, and every reader of the event and
checkpoint streams asks it about each message (``gate_of``). Keeping the gate on
the connection, not on each reader, means no reader can be built that forgets to
ask: the client's waits, the supervisor, the projector, replay, status and the
worker's look-ups all read through a connection made there.

A message that is not believed keeps its offset (readers go on past it, and a
forged last message still marks the tail) but yields no events and no claims.
It is counted and logged once per process, however many readers meet it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection

from ricochet.engine.recent import Recent
from ricochet.engine.trust import distrust
from ricochet.workers.logs import get_logger

log = get_logger(__name__)

REPORTED_KEPT = 100_000
"""Offsets already reported, per process: enough that the look-ups reading the same
stretch of log again do not count a forged message twice, and bounded for a flood."""


class EventGate:
    """The writers this process believes, and what its readers dropped (for metrics)."""

    def __init__(self, writers: Iterable[str] = ()) -> None:
        self.writers = frozenset(writers)
        self.dropped: Counter[tuple[str, str]] = Counter()
        """Messages not believed, by (stream, reason); each counted once."""
        self._reported: Recent[tuple[str, int], None] = Recent(REPORTED_KEPT)

    def refuses(self, stream: str, offset: int, user_id: str | None) -> str | None:
        """Why the message at ``offset`` of ``stream`` must not be believed, or None.

        The first time a message is refused it is counted and logged
        (``event.untrusted``); later readers of the same message only skip it."""
        reason = distrust(self.writers, user_id)
        if reason is None:
            return None
        key = (stream, offset)
        if key not in self._reported:
            self._reported.add(key, None)
            self.dropped[(stream, reason)] += 1
            log.warning(
                "event.untrusted", stream=stream, offset=offset, user_id=user_id, reason=reason
            )
        return reason


ACCEPT_ALL = EventGate()
"""For connections not made by ``broker.connect`` (tests, tools): no writer set given."""


def gate_of(channel: AbstractChannel) -> EventGate:
    """The gate of the connection ``channel`` belongs to."""
    return connection_gate(_connection(channel))


def connection_gate(connection: AbstractConnection | Any) -> EventGate:
    gate = getattr(connection, "event_gate", None)
    return gate if isinstance(gate, EventGate) else ACCEPT_ALL


def writer_of(channel: AbstractChannel) -> str | None:
    """The ``user_id`` for messages published on ``channel``: see ``connection_writer``."""
    return connection_writer(_connection(channel))


def connection_writer(connection: AbstractConnection | Any) -> str | None:
    """The user name ``connection`` logs in as, which RabbitMQ checks ``user_id`` against.

    From the URL of the address in use, as aiormq logs in (guest when it names none).
    Every address of one process names the same user (``workers.addresses``), so a
    fail-over does not change it. With ``auth=external`` the user is the client
    certificate's, which only the URL's user name can tell: without one, None (the
    messages carry no ``user_id``)."""
    url = getattr(connection, "url", None)
    if url is None:
        return None
    if str(url.query.get("auth", "plain")).lower() == "external":
        return url.user or None
    return url.user or "guest"


def _connection(channel: AbstractChannel) -> Any:
    """aio-pika keeps a channel's connection private (``_connection``); as in
    ``broker.closed_for_good``, it is read in one place."""
    return getattr(channel, "_connection", None)
