"""The replier: publishes the replies the ledger says are owed (``engine.replies``).

Each reply goes to the default exchange with the trigger's ``reply_to`` as
routing key and its ``correlation_id``: persistent, ``mandatory``, confirmed.
Once confirmed, ``reply_sent`` is recorded, and nothing more is owed; if the
process dies in between, the next supervisor sends it again (receivers
de-duplicate by execution id). An address that no longer exists comes back
unroutable: logged, recorded as not delivered, dropped. Broker trouble leaves
the reply owed, and it is tried again. Replies are sent concurrently, so one
slow or gone address holds up no other.
"""

from __future__ import annotations

import asyncio
import contextlib

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import PublishError

from ricochet.contracts import REPLY_TYPE, ReplyRequested, ReplyV1, decode_event, encode
from ricochet.contracts.codec import encode_json
from ricochet.engine.projection import Projection
from ricochet.engine.replies import reply_of, reply_sent
from ricochet.engine.watch import Watch
from ricochet.workers.amqp.broker import TRANSIENT, persistent_message, publish, publishing_channel
from ricochet.workers.amqp.topology import Names
from ricochet.workers.clock import Clock
from ricochet.workers.log.reader import Entry, scan_log
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.logs import get_logger

log = get_logger(__name__)

RETRY_AFTER_S = 1.0
"""How long a reply that met broker trouble waits before it is tried again."""


class Replier:
    """Sends what is owed whenever the watch says something new is."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        watch: Watch,
        recorder: EventRecorder,
        clock: Clock,
        worker: str,
    ) -> None:
        self._connection = connection
        self._names = names
        self._watch = watch
        self._recorder = recorder
        self._clock = clock
        self._worker = worker
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._channel: AbstractChannel | None = None
        self._task: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel = await publishing_channel(self._connection)
        self._task = asyncio.create_task(self._forever(), name="ricochet-replies")
        self.wake()

    def wake(self) -> None:
        """Something may be owed now (the ledger's ``news``)."""
        self._watch.replies.news = False
        self._wake.set()

    async def _forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._send_owed()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reply.round_failed")
                self._later()

    async def _send_owed(self) -> None:
        ledger = self._watch.replies
        missing = ledger.needs_end()
        if missing and self._reading is None:
            self._reading = asyncio.create_task(self._read_ends(missing), name="ricochet-ends")
            self._reading.add_done_callback(self._read)
        assert self._channel is not None
        exchange = self._channel.default_exchange
        while ledger.ready:
            execution_id = next(iter(ledger.ready))
            del ledger.ready[execution_id]
            owed = ledger.owed.get(execution_id)
            if owed is None or owed.reply is None:
                continue
            for request in list(owed.requests.values()):
                if request.event_id not in self._in_flight:
                    self._in_flight.add(request.event_id)
                    task = asyncio.create_task(self._send(exchange, request, owed.reply))
                    self._sends.add(task)
                    task.add_done_callback(self._sends.discard)

    async def _send(
        self, exchange: AbstractExchange, request: ReplyRequested, reply: ReplyV1
    ) -> None:
        message = persistent_message(encode(reply), type_=REPLY_TYPE)
        message.correlation_id = request.correlation_id
        try:
            try:
                await publish(exchange, message, request.reply_to)
                delivered = True
            except PublishError:
                log.warning(
                    "reply.unroutable", execution_id=reply.execution_id, reply_to=request.reply_to
                )
                delivered = False
            sent = reply_sent(request, delivered, self._clock(), self._worker)
            await self._recorder.record((sent,))
            self._watch.note(sent, 0.0)
            log.debug("reply.sent", execution_id=reply.execution_id, delivered=delivered)
        except TRANSIENT as err:
            log.warning("reply.retrying", execution_id=reply.execution_id, error=repr(err))
            self._watch.replies.ready[request.execution_id] = None
            self._later()
        finally:
            self._in_flight.discard(request.event_id)

    def _read(self, task: asyncio.Task[None]) -> None:
        """A read of the log for ends is done (it runs beside the sends, never before them)."""
        self._reading = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("reply.reading_ends_failed", error=repr(task.exception()))
            self._later()
        else:
            self._wake.set()

    def _later(self) -> None:
        asyncio.get_running_loop().call_later(RETRY_AFTER_S, self._wake.set)

    async def _read_ends(self, execution_ids: list[str]) -> None:
        """Rare: replies asked for after their executions left memory (a duplicate trigger
        of an execution that ended earlier). One read of the log serves all of them."""
        wanted = set(execution_ids)
        kept: list[bytes] = []

        def keep(entry: Entry) -> None:
            for raw in entry.raw:
                if isinstance(raw, dict) and raw.get("execution_id") in wanted:
                    kept.append(encode_json(raw))

        log.info("reply.reading_ends", executions=len(wanted))
        await scan_log(self._connection, self._names, "first", keep, raw=True)
        projection = Projection()
        for data in kept:
            with contextlib.suppress(Exception):  # unreadable: left out, as everywhere
                projection.apply(decode_event(data))
        for execution_id in wanted:
            await self._settle_end(execution_id, projection)

    async def _settle_end(self, execution_id: str, projection: Projection) -> None:
        """The reply, from the end read back; with no end on the log (past its retention,
        or unreadable) there is nothing to say: logged, and settled as not delivered."""
        owed = self._watch.replies.owed.get(execution_id)
        if owed is None:
            return
        state = projection.get(execution_id)
        owed.reply = None if state is None else reply_of(state)
        if owed.reply is not None:
            self._watch.replies.owe(execution_id, owed)
            return
        log.warning("reply.end_not_found", execution_id=execution_id)
        for request in list(owed.requests.values()):
            sent = reply_sent(request, False, self._clock(), self._worker)
            await self._recorder.record((sent,))
            self._watch.note(sent, 0.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in [*self._sends, *([self._reading] if self._reading else [])]:
            task.cancel()
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
