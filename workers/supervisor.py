"""The supervisor: turns silence into ``worker_lost`` failures, and dead letters into endings.

Every worker process runs one, but the heartbeat queue has a single active
consumer, so exactly one supervises at a time; when it dies the broker makes
another active, which rebuilds what it needs by replaying the log. It judges
only once it has read the log up to where it stood on taking over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from contracts import (
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    DecodeError,
    Event,
    ExecutionRequested,
    Heartbeat,
    RetryScheduled,
    decode,
)
from engine import ExecutionState, Projection, Status
from engine.vigil import Vigil
from workers.dispatch import Dispatcher
from workers.event_log import EventRecorder
from workers.intake import TriggerIntake
from workers.log_reader import Entry, LogFollower, stream_channel, tail_offset
from workers.logs import get_logger
from workers.recovery import Recovery
from workers.settings import Settings
from workers.settle import Clock, Settler
from workers.topology import Names, dead_watch, declare_queue, supervisor, triggers

log = get_logger(__name__)

ENDED_MEMORY = 2_000
"""Recently ended executions remembered, so a duplicate request or start recorded just
after the end cannot revive one. Later stragglers (a zombie's outcome, seconds on)
need no memory: only a request or a start makes the supervisor watch an execution.
A bigger memory only made a busy worker's memory climb (2 MB per 10,000)."""

BEGINNINGS = (ExecutionRequested, AttemptStarted)
"""The events that can make the supervisor watch an execution it does not know."""


class Supervisor:
    """Watches heartbeats and the log; records what no worker is left to record."""

    def __init__(
        self,
        settings: Settings,
        connection: AbstractRobustConnection,
        recorder: EventRecorder,
        settler: Settler,
        dispatcher: Dispatcher,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self._connection = connection
        self._clock = clock
        self._monotonic = monotonic
        self.vigil = Vigil(settings.loss_window_s)
        self.projection = Projection()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._last_seen: dict[str, float] = {}
        self._scheduled_by: dict[str, str | None] = {}
        self._recovered: set[tuple[str, int]] = set()
        self._recovery = Recovery(settings, recorder, settler, clock)
        self.intake = TriggerIntake(dispatcher, settler)
        self.active = False
        self._last_receipt = float("-inf")
        self.caught_up = asyncio.Event()
        self._reached = asyncio.Event()
        self._catch_up_to = -1
        self._activated_at = 0.0
        self._channels: list[AbstractChannel] = []
        self._follower: LogFollower | None = None
        self._judge_task: asyncio.Task[None] | None = None
        self._activation: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join the heartbeat queue; the broker decides whether this one is active."""
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=500)
        self._channels.append(channel)
        queue = await declare_queue(channel, supervisor(self.names))
        await queue.consume(self._on_heartbeat)

    async def _on_heartbeat(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        try:
            heartbeat = decode(Heartbeat, message.body)
        except DecodeError as err:
            log.warning("supervisor.bad_heartbeat", reason=str(err))
            return
        now = self._monotonic()
        if not self._watching(now):
            self.vigil.restart_clock(now)
        self._last_receipt = now
        self._last_seen[heartbeat.worker] = now
        self.vigil.heartbeat(((r.execution_id, r.attempt) for r in heartbeat.running), now)
        if not self.active:
            self.active = True
            self._activation = asyncio.create_task(self._activate(), name="ricochet-supervise")

    async def _activate(self) -> None:
        """Take over; if that fails half-way, the next heartbeat tries again."""
        try:
            await self._take_over()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("supervisor.take_over_failed")
            self.active = False

    async def _take_over(self) -> None:
        """Replay the log, then judge every heartbeat interval and read dead letters."""
        self._activated_at = self._monotonic()
        log.info("supervisor.active", worker=self.settings.worker_id)
        self._catch_up_to = await tail_offset(self._connection, self.names)
        if self._catch_up_to < 0:
            self._reached.set()
        channel = await stream_channel(self._connection)
        self._channels.append(channel)
        self._follower = LogFollower(channel, self.names, self._on_entry)
        await self._follower.start("first")
        await self._reached.wait()
        tail = self._catch_up_to
        self.vigil.restart_clock(self._monotonic())
        self.caught_up.set()
        log.info("supervisor.caught_up", offset=tail, running=len(self.vigil.vouched))
        await self._watch_dead_letters()
        await self._take_triggers()
        self._judge_task = asyncio.create_task(self._judge_forever(), name="ricochet-judge")

    def _on_entry(self, entry: Entry) -> None:
        for event in entry.events:
            self.note(event)
        if entry.offset >= self._catch_up_to:
            self._reached.set()

    def note(self, event: Event) -> None:
        """Fold one event in, and keep the vigil in step with what is running."""
        if isinstance(event, ExecutionRequested):
            self.intake.note(event)
        if event.execution_id in self._ended:
            return
        if event.execution_id not in self.projection.executions and not isinstance(
            event, BEGINNINGS
        ):
            return  # a straggler of an execution ended and forgotten: nothing left to watch
        state = self.projection.apply(event)
        key = (event.execution_id, event.attempt)
        if isinstance(event, AttemptStarted):
            self.vigil.started(key, self._monotonic())
        elif isinstance(event, AttemptSucceeded | AttemptFailed):
            self.vigil.ended(key)
        elif isinstance(event, RetryScheduled):
            self._scheduled_by[event.execution_id] = event.worker
        if state.is_terminal:
            self._forget(state)

    def _forget(self, state: ExecutionState) -> None:
        self.projection.executions.pop(state.execution_id, None)
        self._scheduled_by.pop(state.execution_id, None)
        for attempt in state.attempts:
            self.vigil.ended((state.execution_id, attempt.number))
        self._ended[state.execution_id] = None
        while len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)

    async def _judge_forever(self) -> None:
        while True:
            try:
                await self.judge()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor.judge_failed")
            await asyncio.sleep(min(self.settings.heartbeat_s, 0.5))

    def _watching(self, now: float) -> bool:
        """Heartbeats flow to this supervisor (its own worker's included) only while it is
        the active one and connected; after a gap, nobody's silence can be judged."""
        return now - self._last_receipt <= 3 * self.settings.heartbeat_s

    async def judge(self) -> None:
        """Declare overdue attempts lost; re-publish retries whose scheduler died."""
        if not self._watching(self._monotonic()):
            return
        for key in self.vigil.overdue(self._monotonic()):
            await self._declare_lost(*key)
        for state in list(self.projection.executions.values()):
            if self._retry_was_lost(state):
                self._recovered.add((state.execution_id, state.next_attempt))
                await self._recovery.republish(state)

    async def _declare_lost(self, execution_id: str, attempt: int) -> None:
        self.vigil.ended((execution_id, attempt))
        state = self.projection.get(execution_id)
        if state is None or state.status is not Status.RUNNING or state.next_attempt != attempt:
            return
        worker = state.attempts[-1].worker if state.attempts else None
        events = await self._recovery.lose(state, attempt, worker, self.settings.worker_id)
        for event in events:
            self.note(event)

    def _retry_was_lost(self, state: ExecutionState) -> bool:
        """Due long ago, never started, and whoever scheduled it is silent (died in between)."""
        if state.status is not Status.RETRY_SCHEDULED or state.next_due_at is None:
            return False
        if (state.execution_id, state.next_attempt) in self._recovered:
            return False
        waited = self._clock() - state.next_due_at
        overdue = waited > timedelta(seconds=self.settings.retry_recovery_s)
        return overdue and not self._alive(self._scheduled_by.get(state.execution_id))

    def _alive(self, worker: str | None) -> bool:
        now = self._monotonic()
        if worker is None:
            return False
        seen = self._last_seen.get(worker)
        return seen is not None and now - seen <= self.settings.loss_window_s

    async def _take_triggers(self) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=1)
        self._channels.append(channel)
        queue = await declare_queue(channel, triggers(self.names, self.settings))
        await queue.consume(self._on_trigger)

    async def _on_trigger(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.intake.handle(message)
        except Exception:
            log.exception("trigger.handler_failed", routing_key=message.routing_key)

    async def _watch_dead_letters(self) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=50)
        self._channels.append(channel)
        queue = await declare_queue(channel, dead_watch(self.names))
        await queue.consume(self._on_dead_letter)

    async def _on_dead_letter(self, message: AbstractIncomingMessage) -> None:
        """End the execution of a dead-lettered work message (unknown target, poison...)."""
        try:
            events = await self._recovery.abandon(message, self.projection)
            for event in events:
                self.note(event)
        finally:
            await message.ack()

    async def stop(self) -> None:
        for task in (self._activation, self._judge_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._follower is not None:
            await self._follower.stop()
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()
