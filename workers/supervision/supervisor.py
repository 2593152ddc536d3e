"""The supervisor: turns silence into ``worker_lost`` failures, and dead letters into endings.

Every worker process runs one, but the heartbeat queue has a single active
consumer, so exactly one supervises at a time (``lease``); when it dies the broker
makes another active, which loads the latest checkpoint and reads only the log after
it (SPEC section 8). It judges only once it has read the log up to where it
stood on taking over, and checkpoints every ``checkpoint_s`` from then on. One that
loses the lease stands down at once (``supervisor.standing_down``): it stops judging,
checkpointing, re-publishing and taking triggers, and acts again only after a full
take-over, when the broker makes it active again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from ricochet.contracts import Event, Heartbeat, decode
from ricochet.engine import Status
from ricochet.engine.keys import KeyWindow
from ricochet.engine.vigil import Vigil, take_over_grace, vouched_since
from ricochet.engine.watch import Watch, as_time, is_start
from ricochet.errors import DecodeError
from ricochet.workers.amqp.declaring import ensure_queue
from ricochet.workers.amqp.topology import Names, dead_watch, triggers
from ricochet.workers.client.dispatch import Dispatcher
from ricochet.workers.clock import Clock
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.log.reader import Entry, RawLogFollower, stream_channel, tail_offset
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings
from ricochet.workers.supervision import checkpoint
from ricochet.workers.supervision.checkpoint_log import CheckpointLog
from ricochet.workers.supervision.intake import TriggerIntake
from ricochet.workers.supervision.lease import Lease
from ricochet.workers.supervision.reconnects import attendance, attendance_at_take_over
from ricochet.workers.supervision.recovery import Recovery
from ricochet.workers.supervision.replies import Replier

log = get_logger(__name__)

STOP_CHECKPOINT_S = 5.0
QUIET_WORKERS_AFTER = 3
"""Loss windows of silence after which a worker's last heartbeat is forgotten."""


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
        self.watch = Watch(Vigil(settings.loss_window_s), KeyWindow(settings.key_window_s))
        self.attendance = attendance(settings)
        self._settler = settler
        self._recovery = Recovery(settings, recorder, settler, clock)
        self.intake = TriggerIntake(
            dispatcher,
            settler,
            self.watch,
            clock,
            settings.worker_id,
            self._recovery.redispatch,
            self.note,
        )
        self._checkpoints = CheckpointLog(connection, self.names)
        self._replier = Replier(
            connection, self.names, self.watch, recorder, clock, settings.worker_id
        )
        self.last_checkpoint: int | None = None
        """The offset of the last checkpoint this supervisor wrote or took over from."""
        self.resumed_from: int | None = None
        self.first_offset_read: int | None = None
        self.heartbeats_refused = 0
        self.takeovers = self.attempts_lost = 0  # for the metrics (workers.observe)
        self.stream_tail: int | None = None  # set when metrics are scraped
        self._cadence = checkpoint.Cadence()
        self.active = False
        self.caught_up = asyncio.Event()
        self._reached = asyncio.Event()
        self._catch_up_to = -1
        self._activated_at = 0.0
        self._lease = Lease(connection, self.names, self, monotonic)
        self._stopping = False
        self._channels: list[AbstractChannel] = []
        self._follower: RawLogFollower | None = None
        self._judge_task: asyncio.Task[None] | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._activation: asyncio.Task[None] | None = None

    @property
    def vigil(self) -> Vigil:
        return self.watch.vigil

    @property
    def workers_seen(self) -> Mapping[str, float]:
        """Each worker heard from lately, and when (monotonic seconds)."""
        return self.attendance.last_seen

    @property
    def unreadable(self) -> int:
        """Stream messages this supervisor could not read, and skipped (SPEC 7.7)."""
        return 0 if self._follower is None else self._follower.unreadable

    @property
    def log_lag(self) -> int | None:
        """Stream messages between what this (active) supervisor read and the last tail seen."""
        read = None if self._follower is None else self._follower.last_offset
        if self.stream_tail is None or read is None:
            return None
        return max(self.stream_tail - read, 0)

    @property
    def unrecoverable(self) -> int:
        """Executions whose work the log could not rebuild: reported and left (``Recovery``)."""
        return self._recovery.unrecoverable

    @property
    def trigger_counts(self) -> dict[str, int]:
        return dict(self.intake.counts)

    async def start(self) -> None:
        """Join the heartbeat queue; the broker decides whether this one is active."""
        await self._lease.start()

    async def heartbeat(self, message: AbstractIncomingMessage) -> None:
        """A heartbeat, delivered (and acked) while this process holds the lease."""
        limit = self.settings.max_heartbeat_bytes
        if len(message.body) > limit:
            self.heartbeats_refused += 1
            log.warning("supervisor.heartbeat_refused", bytes=len(message.body), limit=limit)
            return
        try:
            heartbeat = decode(Heartbeat, message.body)
        except DecodeError as err:
            log.warning("supervisor.bad_heartbeat", reason=str(err))
            return
        now = self._monotonic()
        if self.attendance.heard(heartbeat.worker, now):
            self.vigil.restart_clock(now)
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
            self.stand_down("the take-over failed")

    def stand_down(self, reason: str) -> None:
        """The lease may have moved (``lease``): stop acting before aio-pika restores
        anything. Judging, checkpointing and replies are cancelled; the channels of the
        log, triggers and dead letters closed (the first step of each, run before the
        lease returns to aio-pika, keeps it from being restored). Only a heartbeat that
        reaches this process later makes it act again, through a full take-over."""
        if self._stopping or not self.active:
            return
        self.active = False
        self.caught_up.clear()
        log.warning("supervisor.standing_down", worker=self.settings.worker_id, reason=reason)
        for task in (self._activation, self._judge_task, self._checkpoint_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._lease.let_go(self._release())

    def _release(self) -> list[Awaitable[object]]:
        """Everything a take-over opened, to be let go; the take-over state forgotten."""
        held: list[Awaitable[object]] = [self._replier.stop()]
        released = self.intake.release()
        if released is not None:
            held.append(released)
        if self._follower is not None:
            held.append(self._follower.stop())
        held += [channel.close() for channel in self._channels]
        self._follower, self._channels = None, []
        self._judge_task = self._checkpoint_task = None
        self._reached.clear()
        self.resumed_from = self.last_checkpoint = self.first_offset_read = None
        self._cadence = checkpoint.Cadence()
        return held

    async def _take_over(self) -> None:
        """Load the latest checkpoint, read the log after it, then judge every heartbeat
        interval, read dead letters and triggers, and checkpoint."""
        await self._lease.let_go_done()
        self._activated_at = self._monotonic()
        self.takeovers += 1
        log.info("supervisor.active", worker=self.settings.worker_id)
        self.attendance = attendance_at_take_over(
            self.settings, self._connection, self._lease.lost_at, self._activated_at
        )
        self.watch.clear()
        loaded, self._catch_up_to = await asyncio.gather(
            self._checkpoints.latest(), tail_offset(self._connection, self.names)
        )
        start = self._restore(loaded)
        if self._catch_up_to <= (-1 if loaded is None else loaded.offset):
            self._reached.set()
        channel = await stream_channel(self._connection)
        self._channels.append(channel)
        self._follower = RawLogFollower(channel, self.names, self._on_entry)
        await self._follower.start(start)
        await self._reached.wait()
        self.caught_up.set()
        log.info(
            "supervisor.caught_up",
            offset=self._catch_up_to,
            from_checkpoint=self.resumed_from,
            running=len(self.vigil.vouched),
            live=len(self.watch.live),
            keys=len(self.watch.keys),
            seconds=round(self._monotonic() - self._activated_at, 3),
        )
        await self._replier.start()
        await self._watch_dead_letters()
        await self._take_triggers()
        self._judge_task = asyncio.create_task(self._judge_forever(), name="ricochet-judge")
        self._checkpoint_task = asyncio.create_task(
            self._checkpoint_forever(), name="ricochet-checkpoint"
        )

    def _restore(self, loaded: checkpoint.Checkpoint | None) -> str | int:
        """Take over what the checkpoint says; where to start reading the log."""
        if loaded is None:
            log.info("supervisor.no_checkpoint", reading_from="first")
            return "first"
        checkpoint.restore(self.watch, loaded, self._vouched_at)
        self.resumed_from = self.last_checkpoint = loaded.offset
        self._cadence.written(loaded.offset, 0)
        return loaded.offset + 1

    def _vouched_at(self, started_at: str | None) -> float:
        """See ``engine.vigil.vouched_since``: the start time is as the worker wrote it."""
        started = as_time(started_at)
        age = 0.0 if started is None else (self._clock() - started).total_seconds()
        window, beat = self.settings.loss_window_s, self.settings.heartbeat_s
        return vouched_since(self._monotonic(), age, window, take_over_grace(beat, window))

    def _on_entry(self, entry: Entry) -> None:
        if self.first_offset_read is None:
            self.first_offset_read = entry.offset
        self._cadence.read(entry.size)
        now = self._monotonic()
        catching_up = not self.caught_up.is_set()
        for raw in entry.raw:
            if not isinstance(raw, dict):
                self.watch.malformed += 1
            elif catching_up and is_start(raw):
                self.watch.note_raw(raw, self._vouched_at(raw.get("at")))
            else:
                self.watch.note_raw(raw, now)
        if entry.offset >= self._catch_up_to:
            self._reached.set()
        if self.watch.replies.news and self.caught_up.is_set():
            self._replier.wake()

    def note(self, event: Event) -> None:
        """Fold one event in, and keep the vigil in step with what is running."""
        self.watch.note(event, self._monotonic())

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.checkpoint_s)
            try:
                await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("supervisor.checkpoint_failed", error=repr(err))

    async def checkpoint(self, *, force: bool = False) -> None:
        """Record what this supervisor keeps, as of the last offset it folded, when the
        cadence says it is worth it (``force``: whenever the offset moved)."""
        offset = None if self._follower is None else self._follower.last_offset
        due = self._cadence.due(offset) or (force and offset != self._cadence.offset)
        if offset is None or not due:
            return
        body = checkpoint.take(self.watch, offset, self._clock(), self.settings.worker_id)
        await self._checkpoints.save(body)
        self._cadence.written(offset, len(body))
        self.last_checkpoint = offset
        log.info(
            "supervisor.checkpointed",
            offset=offset,
            live=len(self.watch.live),
            keys=len(self.watch.keys),
            bytes=len(body),
        )

    async def _judge_forever(self) -> None:
        while True:
            try:
                await self.judge()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor.judge_failed")
            await asyncio.sleep(min(self.settings.heartbeat_s, 0.5))

    async def judge(self) -> None:
        """Declare overdue attempts lost; re-publish retries whose scheduler died."""
        now = self._monotonic()
        if not self.attendance.listening(now):
            return  # after a gap, nobody's silence can be judged
        self.attendance.forget_quiet(now, QUIET_WORKERS_AFTER)
        self.watch.keys.expire(self._clock().timestamp())
        for key in self.vigil.overdue(now):
            if self.attendance.may_judge(self.watch.worker_of(key), now):
                await self._declare_lost(*key)
        await self._recover(now)

    async def _recover(self, now: float) -> None:
        """Re-publish retries overdue beyond the bound, and the work of requests never
        started: copies are harmless, since the first start of an attempt wins (SPEC 7.8)."""
        bound = timedelta(seconds=self.settings.retry_recovery_bound_s)
        for state in list(self.watch.lost_retries(self._clock(), bound)):
            self.watch.recovered.add((state.execution_id, state.next_attempt))
            await self._recovery.republish(state)
        for state in list(self.watch.orphans(now, self.settings.orphan_after_s)):
            self.watch.recovered.add((state.execution_id, 1))
            for event in await self._recovery.redispatch(state):
                self.note(event)

    async def _declare_lost(self, execution_id: str, attempt: int) -> None:
        self.vigil.ended((execution_id, attempt))
        state = self.watch.state_of(execution_id)
        if state is None or state.status is not Status.RUNNING or state.next_attempt != attempt:
            return
        worker = state.attempts[-1].worker if state.attempts else None
        events = await self._recovery.lose(state, attempt, worker, self.settings.worker_id)
        self.attempts_lost += 1
        for event in events:
            self.note(event)

    async def _take_triggers(self) -> None:
        spec = triggers(self.names, self.settings)
        await self.intake.consume(self._connection, spec, self.settings.trigger_prefetch)

    async def _watch_dead_letters(self) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=50)
        self._channels.append(channel)
        queue = await ensure_queue(self._connection, channel, dead_watch(self.names))
        await queue.consume(self._on_dead_letter)

    async def _on_dead_letter(self, message: AbstractIncomingMessage) -> None:
        """End the execution of a dead-lettered work message (unknown target, poison...)."""
        try:
            events = await self._recovery.abandon(message, self.watch.state_of)
            for event in events:
                self.note(event)
        finally:
            await message.ack()

    async def stop(self) -> None:
        """Stop; an active supervisor leaves a last checkpoint, so the next one (a rolling
        deploy, say) reads next to nothing of the log. The triggers in hand are settled
        first, before the heartbeat queue (and so the next supervisor) is let go."""
        self._stopping = True
        await self.intake.stop()
        await self._lease.stop()
        if self.caught_up.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.checkpoint(force=True), STOP_CHECKPOINT_S)
        for task in (self._activation, self._judge_task, self._checkpoint_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._replier.stop()
        if self._follower is not None:
            await self._follower.stop()
        await self._checkpoints.close()
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()
