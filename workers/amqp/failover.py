"""A robust connection that fails over among several broker addresses.

aio-pika's ``RobustConnection`` reconnects to the one URL it was given, so a
process pointed at a stopped cluster node stalls until that node returns.
This subclass keeps aio-pika's restore machinery (channels, queues, bindings
and consumers are declared again on the new node, stream consumers with their
``x-stream-offset`` argument as last updated) and changes only *where* each
attempt goes:

- at start, the addresses are tried in order, each once; if none answers,
  ``BrokerUnreachable`` names each address and why it failed, in words
  (``ricochet.workers.amqp.causes``), in one line and without the password;
- after a lost connection or a failed attempt, the next attempt goes to the
  next address (rotating from the last good one): at once to the next one,
  and after a whole round failed, with a growing pause (jittered, up to 5 s).

Every address gets the same TLS context (``ssl_context``; ``None`` for plain
``amqp://`` only): aio-pika keeps it in the connection's arguments, so each
reconnect, to whichever node, checks the certificate the same way. aiormq uses
it for ``amqps://`` addresses and ignores it for ``amqp://`` ones.

The hook is ``_on_connection_close``: aio-pika calls it both when a live
connection ends and when an attempt to connect fails, always before its
reconnect loop picks the next attempt, which reads ``self.url``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from aio_pika.abc import TimeoutType
from yarl import URL

from ricochet.errors import BrokerUnreachable
from ricochet.workers.addresses import BrokerAddress, masked
from ricochet.workers.amqp.causes import in_words, unreachable
from ricochet.workers.amqp.trust import EventGate
from ricochet.workers.logs import get_logger

log = get_logger(__name__)

NEXT_ADDRESS_PAUSE_S = 0.1
"""Pause before trying the next address when the round is not over yet."""
ROUND_PAUSES_S = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Pause after every address failed once, twice...: short, for a broker restarting
under live work (heartbeats are late meanwhile), up to aio-pika's former fixed 5 s."""
JITTER = 0.2
"""Round pauses vary by this fraction, so workers cut off together do not return
to a recovering node in one burst."""


class RepeatsOurs(logging.Filter):
    """Drops aio-pika's and aiormq's own lines about a failed connection attempt.

    ``broker.connect_failed`` and ``broker.disconnected`` (and at start
    ``BrokerUnreachable``) say the same, naming the node and vhost and the cause in
    words. Without this, a command run against a stopped broker prints three
    lines, two of them Python reprs, for one fault.
    """

    REPEATS = frozenset(
        {
            'Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.',
            "error when creating transport: %r",
        }
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.REPEATS


REPEATS_OURS = RepeatsOurs()
REPEATING_LOGGERS = ("aio_pika.robust_connection", "aiormq.connection")


class FailoverConnection(RobustConnection):
    """A ``RobustConnection`` over ``addresses``, which logs the node it is on."""

    def __init__(
        self,
        addresses: Sequence[BrokerAddress],
        role: str,
        event_gate: EventGate | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **kwargs: Any,
    ) -> None:
        if not addresses:
            raise ValueError("a connection needs at least one broker address")
        url = URL(addresses[0].url)
        super().__init__(url, fail_fast="0", ssl_context=ssl_context, **kwargs)
        self.role = role
        self.event_gate = event_gate or EventGate()
        """Whose stream messages this process's readers believe (``amqp.trust``)."""
        self._addresses = tuple(addresses)
        self._index = 0
        self._failures = 0
        self._connected_once = False
        self.reconnected_at: float | None = None
        """When (monotonic) this connection last came back after a loss, if ever."""
        self._start_errors: list[tuple[BrokerAddress, str]] = []
        self._timeout: TimeoutType = None
        self._unreachable: asyncio.Future[None] = self.loop.create_future()
        self.reconnect_interval = NEXT_ADDRESS_PAUSE_S
        for name in REPEATING_LOGGERS:
            logging.getLogger(name).addFilter(REPEATS_OURS)  # once: a filter is kept once

    def __str__(self) -> str:
        """What aio-pika's own log lines call this connection: its ``url`` is only the
        address of the moment (``broker.*`` events name the node)."""
        return f"ricochet-{self.role} over {len(self._addresses)} broker address(es)"

    @property
    def address(self) -> BrokerAddress:
        """The node this connection is on, or will try next."""
        return self._addresses[self._index]

    async def connect(self, timeout: TimeoutType = None) -> None:
        """Connect to the first address that answers; raise once every one has failed."""
        self._timeout = timeout
        if self._connected_once:
            await super().connect(timeout)
            return
        connecting = asyncio.ensure_future(super().connect(timeout))
        try:
            await asyncio.wait((connecting, self._unreachable), return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                self._unreachable.result()
            connecting.result()
        except BaseException:
            connecting.cancel()
            await self.close()
            raise

    async def _on_connected(self) -> None:
        await super()._on_connected()
        again, self._connected_once = self._connected_once, True
        if again:
            self.reconnected_at = time.monotonic()
        self._failures = 0
        self.reconnect_interval = NEXT_ADDRESS_PAUSE_S
        if not again:
            self._log_start_failures()
        node = self.address
        log.info(
            "broker.connected",
            role=self.role,
            node=node.node,
            vhost=node.vhost,
            addresses=len(self._addresses),
            reconnected=again,
        )

    async def leave_node(self, reason: str) -> bool:
        """Drop the connection to this node, so it is made again to the next address,
        as after a lost connection (channels and consumers restored there). For a node
        that serves a stale copy of a stream. False when there is no other address."""
        transport = self.transport
        if len(self._addresses) < 2 or transport is None or self.is_closed:
            return False
        log.warning("broker.leaving_node", role=self.role, node=self.address.node, reason=reason)
        await transport.connection.close(ConnectionError(reason))
        return True

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if not (self._close_called or self.is_closed):
            self._move_on(_error_of(closing))
        await super()._on_connection_close(closing)

    def _move_on(self, error: BaseException | None) -> None:
        """Point the next attempt at the next address, and pick the pause before it."""
        was = self.address
        lost = self.connected.is_set()
        reason = in_words(error, was, _seconds(self._timeout), connecting=not lost)
        self._failures += 1
        self._index = (self._index + 1) % len(self._addresses)
        self.url = URL(self.address.url)
        self.reconnect_interval = self._pause()
        if not self._connected_once:
            self._start_errors.append((was, reason))
            if self._failures >= len(self._addresses):
                self._give_up()
            return
        log.warning(
            "broker.disconnected" if lost else "broker.connect_failed",
            role=self.role,
            node=was.node,
            vhost=was.vhost,
            error=reason,
            next_node=self.address.node,
            pause_s=0.0 if lost else round(self.reconnect_interval, 3),
        )

    def _log_start_failures(self) -> None:
        """The addresses passed over at start, logged once another one answered. Not
        before: if none answers, ``BrokerUnreachable`` names them all in one line, and
        a line per address ahead of it would only repeat it."""
        for position, (address, reason) in enumerate(self._start_errors):
            log.warning(
                "broker.connect_failed",
                role=self.role,
                node=address.node,
                vhost=address.vhost,
                error=reason,
                next_node=self._addresses[position + 1].node,
                pause_s=NEXT_ADDRESS_PAUSE_S,
            )
        self._start_errors.clear()

    def _pause(self) -> float:
        rounds, rest = divmod(self._failures, len(self._addresses))
        if rest:
            return NEXT_ADDRESS_PAUSE_S
        pause = ROUND_PAUSES_S[min(rounds, len(ROUND_PAUSES_S)) - 1]
        return pause * random.uniform(1 - JITTER, 1 + JITTER)

    def _give_up(self) -> None:
        if not self._unreachable.done():
            causes = tuple(reason for _, reason in self._start_errors)
            error = BrokerUnreachable(unreachable(self._start_errors), causes)
            self._unreachable.set_exception(error)


def _error_of(closing: asyncio.Future[Any]) -> BaseException | None:
    try:
        return closing.exception()
    except asyncio.CancelledError as err:
        return err


def _seconds(timeout: TimeoutType) -> float | None:
    return float(timeout) if isinstance(timeout, int | float) else None


def masked_error(error: BaseException | None, address: BrokerAddress) -> str:
    """``repr(error)``, with the address's URL masked should the error quote it."""
    return repr(error).replace(address.url, masked(address.url))
