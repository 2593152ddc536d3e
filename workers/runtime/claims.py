"""Following the log's openers and claims, so a try learns whether it may run (``engine.claims``).

Every worker folds the log into ``OpenAttempts``: from the supervisor's latest
checkpoint (every live execution, with its events) and the log after it, read
to its end before the worker takes any work. From then on it follows the log,
and a delivery is judged against it:

- its attempt is open and unclaimed: the try records its start, and runs only
  once that start is read back as the first claim of the open attempt;
- its attempt was claimed, or its execution ended lately: acked, never run;
- the book does not know it: the book first reads the log up to the moment the
  delivery arrived (an opener is always on the log before its work message),
  and if it still does not know it, nobody opened it: dead-lettered, never run.

No header of the message is consulted, so no copy, however old or however
forged its times, can skip the check (SPEC 7.11).

The same follower is this process's ``Witness``: it tells the worker whether the
messages it published itself are really on the log (``workers.log.witness``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import defaultdict
from collections.abc import Callable

import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ricochet.engine.claims import Copy, OpenAttempts, is_claim
from ricochet.workers.amqp.broker import retry_pause
from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.amqp.topology import Names
from ricochet.workers.log.reader import Entry, RawLogFollower, stream_channel, tail_offset
from ricochet.workers.log.witness import Witness
from ricochet.workers.logs import get_logger
from ricochet.workers.supervision.checkpoint_log import CheckpointLog

log = get_logger(__name__)

STALE_LOG_S = 20.0
"""A confirmed write of this process unseen this long: the node's copy of the log is
stale, and the connection moves to the next address (``_leave_a_stale_node``)."""
FIRST_LOOK_S = 2.0
"""How long a delivery the book does not know waits for the book to read its opener,
before the book reads the log to its end to be sure."""
CATCH_UP_S = 60.0
"""How long reading the log to its end may take before a delivery is given back."""

MARKS = (
    b'"attempt_started.',
    b'"execution_cancelled.',
    b'"cancel_requested.',
    b'"execution_requested.',
    b'"retry_scheduled.',
    b'"execution_succeeded.',
    b'"execution_failed.',
    b'"attempt_failed.',
)
"""A stream message with none of these changes nothing the book keeps: not even parsed."""


class Openers(RawLogFollower):
    """A raw follower that does not parse messages the book has no use for."""

    def _decode(self, offset: int, message: AbstractIncomingMessage) -> Entry:
        body = message.body
        if not any(mark in body for mark in MARKS):
            return Entry(offset, (), message.message_id, size=len(body))
        return super()._decode(offset, message)


class ClaimBook:
    """Every live execution's open attempt and first claims, and the tries waiting to hear."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        monotonic: Callable[[], float] = time.monotonic,
        witness: Witness | None = None,
    ) -> None:
        self._connection = connection
        self.witness = witness or Witness(monotonic)
        self._names = names
        self._monotonic = monotonic
        self.attempts = OpenAttempts()
        self._waiting: dict[int, tuple[asyncio.Future[bool], str, int]] = {}
        self._touched: defaultdict[int, list[asyncio.Future[None]]] = defaultdict(list)
        self._reaching: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._probe: tuple[float, asyncio.Task[int]] | None = None
        self._follower: Openers | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._stale_watch: asyncio.Task[None] | None = None
        self.read_to = -1
        """The last log offset read."""
        self._following = asyncio.Event()

    async def start(self) -> None:
        """Begin, in the background: load the latest checkpoint, follow the log after it
        and read it to its end. Deliveries wait for the book to follow (``judge``), so a
        worker's start does not wait for its reads; if the log cannot be read yet (a
        cluster node with no replica of the stream so far, say), it keeps trying."""
        self._retrying = asyncio.create_task(self._follow_eventually())

    async def _follow(self) -> None:
        start = await self._seed()
        channel = await stream_channel(self._connection)
        try:
            follower = Openers(channel, self._names, self._on_entry)
            await follower.start(start)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._follower = follower
        self.witness.active = True
        if self._stale_watch is None:
            self._stale_watch = asyncio.create_task(self._leave_a_stale_node())

    async def _seed(self) -> str | int:
        """Fold in the latest checkpoint's live executions; where to read the log from."""
        self.attempts = OpenAttempts()
        loaded = await CheckpointLog(self._connection, self._names).latest()
        if loaded is None:
            return "first"
        for execution_id in loaded.header.ended:
            self.attempts.ended.add(hash(execution_id), 0)
        for live in loaded.live.values():
            for data in live.events:
                with contextlib.suppress(orjson.JSONDecodeError):
                    raw = orjson.loads(data)
                    if isinstance(raw, dict):
                        self.attempts.note(raw)
        return loaded.offset + 1 if loaded.offset >= 0 else "first"

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
            try:
                await self._follow()
            except Exception as err:
                log.warning("claims.not_following_yet", error=repr(err), tries=tries)
                await asyncio.sleep(retry_pause(tries))
            else:
                break
        self._following.set()
        caught_up = await self.read_to_now(self._monotonic(), CATCH_UP_S)
        live = len(self.attempts.live)
        log.info("claims.caught_up" if caught_up else "claims.catching_up", live=live)

    async def stop(self) -> None:
        for task in (self._stale_watch, self._retrying):
            if task is not None:
                task.cancel()
        self.witness.stop()
        if self._follower is not None:
            await self._follower.stop()
        for waiting, _, _ in self._waiting.values():
            waiting.cancel()

    async def judge(self, execution_id: str, attempt: int, arrived: float) -> Copy | None:
        """A delivery's fate before its try (``arrived``: when, monotonic). What the book
        does not know yet waits for it to read that far; None: the log could not be
        read to its end in time (the delivery is given back)."""
        if not self._following.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._following.wait(), CATCH_UP_S)
            if not self._following.is_set():
                return None
        deadline = self._monotonic() + FIRST_LOOK_S
        verdict = self.attempts.judge(execution_id, attempt, read_to_now=False)
        while verdict is Copy.WAIT and self._monotonic() < deadline:
            await self._until_touched(hash(execution_id), deadline - self._monotonic())
            verdict = self.attempts.judge(execution_id, attempt, read_to_now=False)
        if verdict is not Copy.WAIT:
            return verdict
        if not await self.read_to_now(arrived, CATCH_UP_S):
            return None
        return self.attempts.judge(execution_id, attempt, read_to_now=True)

    async def _until_touched(self, execution: int, timeout_s: float) -> None:
        touched = asyncio.get_running_loop().create_future()
        self._touched[execution].append(touched)
        try:
            await asyncio.wait_for(touched, max(0.0, timeout_s))
        except TimeoutError:
            pass
        finally:
            waiters = self._touched.get(execution)
            if waiters is not None and touched in waiters:
                waiters.remove(touched)
                if not waiters:
                    del self._touched[execution]

    async def read_to_now(self, since: float, timeout_s: float) -> bool:
        """Read the log at least to where its end was at ``since`` (monotonic) or later;
        False if that took longer than ``timeout_s`` or the log could not be read."""
        try:
            tail = await asyncio.wait_for(self._tail_after(since), timeout_s)
        except Exception as err:
            log.warning("claims.tail_unknown", error=repr(err))
            return False
        if self.read_to >= tail:
            return True
        reached = asyncio.get_running_loop().create_future()
        heapq.heappush(self._reaching, (tail, next(self._order), reached))
        try:
            await asyncio.wait_for(reached, timeout_s)
        except TimeoutError:
            log.warning("claims.behind", read_to=self.read_to, tail=tail)
            return False
        return True

    async def _tail_after(self, since: float) -> int:
        """The log's last offset, as found by a look that began at ``since`` or later
        (looks are shared by the deliveries that arrived before one began)."""
        if self._probe is None or self._probe[0] < since or _failed(self._probe[1]):
            task = asyncio.create_task(tail_offset(self._connection, self._names))
            self._probe = (self._monotonic(), task)
        return await asyncio.shield(self._probe[1])

    def claimed(self, execution_id: str, attempt: int) -> bool:
        """Has the log shown a claim of this attempt (a cancel that won, say)?"""
        return self.attempts.claimed(execution_id, attempt)

    def expect(self, claim: str, execution_id: str, attempt: int) -> None:
        """Say, before publishing a start, that a verdict on ``claim`` will be asked."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[hash(claim)] = (future, execution_id, attempt)

    def forget(self, claim: str) -> None:
        """A start that never reached the log needs no verdict."""
        waiting = self._waiting.pop(hash(claim), None)
        if waiting is not None:
            waiting[0].cancel()

    def read(self, claim: str) -> bool:
        """Has ``claim``'s start been read from the log?"""
        waiting = self._waiting.get(hash(claim))
        return waiting is not None and waiting[0].done() and not waiting[0].cancelled()

    async def won(self, claim: str, timeout_s: float) -> bool | None:
        """True if ``claim``'s start is the first claim of its open attempt on the log,
        False if not, None if the log did not show it within ``timeout_s``."""
        waiting = self._waiting.get(hash(claim))
        if waiting is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(waiting[0]), timeout_s)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(hash(claim), None)

    def _on_entry(self, entry: Entry) -> None:
        for raw in entry.raw:
            if isinstance(raw, dict):
                self._note(raw)
        self.witness.seen(entry.message_id)  # after the claims: a start seen is judged
        self.read_to = max(self.read_to, entry.offset)
        while self._reaching and self._reaching[0][0] <= self.read_to:
            reached = heapq.heappop(self._reaching)[2]
            if not reached.done():
                reached.set_result(None)

    def _note(self, raw: dict[str, object]) -> None:
        touched = self.attempts.note(raw)
        claim = raw.get("claim")
        if isinstance(claim, str) and is_claim(raw):
            waiting = self._waiting.get(hash(claim))
            if waiting is not None and not waiting[0].done():
                future, execution_id, attempt = waiting
                future.set_result(self.attempts.won(execution_id, attempt, claim))
        if touched is not None:
            for waiter in self._touched.pop(touched, ()):
                if not waiter.done():
                    waiter.set_result(None)


def _failed(task: asyncio.Task[int]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
