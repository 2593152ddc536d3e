"""Following the log's claims, so a try learns whether it won (``engine.claims``).

Every worker follows the log's claims (starts, and cancels) from the moment it
starts, and a try runs its body only once its own start is seen and no other
claim of the same attempt came before it (the rules are in ``engine.claims``;
this is their I/O).

What it remembers is bounded: the first claim of each attempt started within
the last ``horizon_s`` seconds, as two 64-bit hashes, and the cancels that won
(``HELD_CANCELS`` at most). A message whose attempt could have been claimed
before that (a backlog older than the horizon, a retry published before the
worker started) is checked against the log itself before its try
(``StartedLookup``), and the book still decides among tries from then on.

The same follower is this process's ``Witness``: it tells the worker whether the
messages it published itself are really on the log (``workers.log.witness``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from datetime import datetime

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ricochet.engine.claims import (
    FirstStarts,
    cancels_covered,
    is_cancel,
    is_claim,
    memory_covers,
)
from ricochet.workers.amqp.broker import retry_pause
from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.amqp.topology import Names
from ricochet.workers.clock import Clock
from ricochet.workers.log.reader import Entry, RawLogFollower, stream_channel
from ricochet.workers.log.witness import Witness
from ricochet.workers.logs import get_logger

log = get_logger(__name__)

STALE_LOG_S = 20.0
"""A confirmed write of this process unseen this long: the node's copy of the log is
stale, and the connection moves to the next address (``_leave_a_stale_node``)."""

CLAIM_MARKS = (b'"attempt_started.', b'"execution_cancelled.', b'"cancel_requested.')
"""A stream message with none of these holds no claim: skipped without being parsed."""


class StartsOnly(RawLogFollower):
    """A raw follower that does not even parse messages holding no claim."""

    def _decode(self, offset: int, message: AbstractIncomingMessage) -> Entry:
        body = message.body
        if not any(mark in body for mark in CLAIM_MARKS):
            return Entry(offset, (), message.message_id, size=len(body))
        return super()._decode(offset, message)


class ClaimBook:
    """The first claim of every attempt started lately, and the tries waiting to hear."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        horizon_s: float,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        witness: Witness | None = None,
    ) -> None:
        self._connection = connection
        self.witness = witness or Witness(monotonic)
        self._names = names
        self._horizon_s = horizon_s
        self._clock = clock
        self._monotonic = monotonic
        self._firsts = FirstStarts(horizon_s)
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._follower: StartsOnly | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._stale_watch: asyncio.Task[None] | None = None
        self.since: datetime | None = None
        """When this book began to follow the log: it knows no start before."""
        self.known_since: datetime | None = None
        """From when it holds every cancel that won: ``since``, or later once some
        were forgotten for room (``engine.claims.HELD_CANCELS``)."""

    async def start(self) -> None:
        """Follow the log from now on; if the log cannot be read yet (a cluster node
        with no replica of the stream so far, say), keep trying in the background: until
        then ``covers`` says no, and copies are checked against the log itself."""
        try:
            await self._follow()
        except Exception as err:
            log.warning("claims.not_following_yet", error=repr(err))
            self._retrying = asyncio.create_task(self._follow_eventually())

    async def _follow(self) -> None:
        channel = await stream_channel(self._connection)
        try:
            follower = StartsOnly(channel, self._names, self._on_entry)
            since = self._clock()
            await follower.start("next")
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._follower, self.since, self.known_since = follower, since, since
        self.witness.active = True
        if self._stale_watch is None:
            self._stale_watch = asyncio.create_task(self._leave_a_stale_node())

    async def _leave_a_stale_node(self) -> None:
        """Leave the node when its copy of the log has stopped following the leader.

        On RabbitMQ 3.10, after a stream's leader node stops, a replica on another
        node can stay behind for good (seen in the cluster fault test: a worker's
        readers, fresh consumers too, saw nothing past one offset for minutes, while
        the log went on elsewhere). This process's own confirmed writes, unseen for
        ``STALE_LOG_S``, show it: the connection moves to the next address."""
        while True:
            await asyncio.sleep(STALE_LOG_S / 4)
            if self.witness.unseen_for() < STALE_LOG_S:
                continue
            reason = f"its copy of the log showed none of our writes for {STALE_LOG_S:.0f} s"
            if isinstance(self._connection, FailoverConnection):
                with contextlib.suppress(Exception):
                    if await self._connection.leave_node(reason):
                        await asyncio.sleep(STALE_LOG_S)  # let the reader catch up there

    async def _follow_eventually(self) -> None:
        for tries in itertools.count():
            await asyncio.sleep(retry_pause(tries))
            try:
                await self._follow()
            except Exception as err:
                log.warning("claims.not_following_yet", error=repr(err), tries=tries)
            else:
                log.info("claims.following")
                return

    async def stop(self) -> None:
        if self._stale_watch is not None:
            self._stale_watch.cancel()
        self.witness.stop()
        if self._retrying is not None:
            self._retrying.cancel()
        if self._follower is not None:
            await self._follower.stop()
        for waiting in self._waiting.values():
            waiting.cancel()

    def covers(self, earliest: datetime | None, cancel_floor: datetime | None) -> bool:
        """Would the book have seen every start of an attempt that cannot have started
        before ``earliest`` (its due or request time), and every cancel it must obey
        (none is on the log before ``cancel_floor``, see ``engine.claims.cancel_floor``)?"""
        starts = memory_covers(earliest, self.since, self._clock(), self._horizon_s)
        return starts and cancels_covered(cancel_floor, self.known_since)

    def started(self, execution_id: str, attempt: int) -> bool:
        """Has the log shown a claim of this attempt lately (a start, or a cancel that
        won)? Then a copy need not even try: it would only add a losing start to the log."""
        return self._firsts.first(hash((execution_id, attempt))) is not None

    def expect(self, claim: str) -> None:
        """Say, before publishing a start, that a verdict on ``claim`` will be asked."""
        self._waiting[hash(claim)] = asyncio.get_running_loop().create_future()

    def forget(self, claim: str) -> None:
        """A start that never reached the log needs no verdict."""
        waiting = self._waiting.pop(hash(claim), None)
        if waiting is not None:
            waiting.cancel()

    async def won(self, claim: str, timeout_s: float) -> bool | None:
        """True if ``claim``'s start is the first of its attempt on the log, False if
        another came first, None if the log did not show it within ``timeout_s``."""
        waiting = self._waiting.get(hash(claim))
        if waiting is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), timeout_s)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(hash(claim), None)

    def _on_entry(self, entry: Entry) -> None:
        now = self._monotonic()
        for raw in entry.raw:
            if isinstance(raw, dict) and is_claim(raw):
                attempt = hash((raw.get("execution_id"), raw.get("attempt")))
                self._note(attempt, raw.get("claim"), now, is_cancel(raw))
        self.witness.seen(entry.message_id)  # after the claims: a start seen is judged

    def _note(self, attempt: int, claim: object, now: float, cancel: bool) -> None:
        mine = hash(claim) if isinstance(claim, str) else 0
        dropped = self._firsts.dropped_holds
        first = self._firsts.note(attempt, mine, now, hold=cancel)
        if self._firsts.dropped_holds != dropped:
            self.known_since = self._clock()  # cancels before now may be forgotten
        waiting = self._waiting.get(mine) if mine else None
        if waiting is not None and not waiting.done():
            waiting.set_result(first)
