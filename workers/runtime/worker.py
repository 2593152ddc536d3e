"""The worker process: consumes work queues and runs attempts, many at a time.

Concurrency is bounded by a semaphore, not by prefetch: a work message is
acked as soon as its ``AttemptStarted`` is confirmed, which frees prefetch
credit while the function is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aiohttp import web

from ricochet.workers.amqp.broker import connect, consuming_channel, publishing_channel
from ricochet.workers.amqp.declaring import ensure_core, until_topology
from ricochet.workers.amqp.failover import FailoverConnection
from ricochet.workers.amqp.topology import Names, declare_queue, work_queue
from ricochet.workers.amqp.trust import connection_gate
from ricochet.workers.client.dispatch import Dispatcher
from ricochet.workers.clock import Clock, utc_now
from ricochet.workers.delivery.acks import RunAcker
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.log.reader import tail_offset
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.log.witness import Witness
from ricochet.workers.logs import get_logger
from ricochet.workers.observe.metrics import WorkerMetrics
from ricochet.workers.observe.serving import serve_metrics
from ricochet.workers.runtime.attempt import AttemptProcessor
from ricochet.workers.runtime.children import ChildService
from ricochet.workers.runtime.claims import ClaimBook
from ricochet.workers.runtime.heartbeat import HeartbeatSender, RunningAttempts
from ricochet.workers.runtime.own_writes import OwnWrites
from ricochet.workers.runtime.runner import CountingPool
from ricochet.workers.runtime.tasks import Task, index_tasks
from ricochet.workers.settings import Settings
from ricochet.workers.supervision.supervisor import Supervisor

log = get_logger(__name__)

CLOSE_STEP_S = 20.0
"""The longest one part of a stopping worker may take to close: past it the stop goes
on to the next part (and the connection, closed last, ends whatever was left)."""

SEEN_ON_STOP_S = 10.0
"""On stop, how long outcomes already recorded get to be seen on the log (or be
published again, ``workers.log.witness``) before the connection closes."""

SPARE_THREADS = 4 + 512
"""Threads beyond --concurrency (made only when needed): a sync function left running
past its timeout keeps one, and a sync parent waiting on a child blocks one while its
slot is free for other work."""


class Worker:
    """Serves ``tasks`` from their queues (or only ``queues``, when given)."""

    def __init__(
        self,
        settings: Settings,
        tasks: Sequence[Task[..., Any]],
        queues: Sequence[str] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.tasks = index_tasks(tasks)
        self.queues = tuple(queues) if queues else tuple(sorted({t.spec.queue for t in tasks}))
        self._clock = clock
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._pool = CountingPool(
            settings.concurrency + SPARE_THREADS, thread_name_prefix="ricochet"
        )
        self._running: set[asyncio.Task[None]] = set()
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._connection: AbstractRobustConnection | None = None
        self._processor: AttemptProcessor | None = None
        self._writes: OwnWrites | None = None
        self._running_attempts = RunningAttempts()
        self._acks = RunAcker()
        self._settler: Settler | None = None
        self._heartbeat: HeartbeatSender | None = None
        self.supervisor: Supervisor | None = None
        self._children: ChildService | None = None
        self._claims: ClaimBook | None = None
        self._witness = Witness()
        """Whether this worker's own writes are really on the log (the claim book feeds it)."""
        self._accepting = True
        self.metrics = WorkerMetrics() if settings.metrics_port is not None else None
        self.metrics_port: int | None = None
        """The port /metrics is served on, once started (``metrics_port`` 0 picks one)."""
        self._metrics_server: web.AppRunner | None = None

    async def start(self) -> None:
        """Connect (waiting for the broker up to ``startup_wait_s``), declare what this
        worker needs, and start consuming. A start that fails half-way closes what it
        opened: a robust connection left behind would reconnect for ever."""
        try:
            await self._start()
        except BaseException:
            await self._close()
            raise

    async def _start(self) -> None:
        self._connection = connection = await connect(
            self.settings, "worker", wait_s=self.settings.startup_wait_s
        )
        if not all(item.is_async for item in self.tasks.values()):
            self._pool.prestart(self.settings.concurrency)
        names = await until_topology(  # a `worker` user only checks it, and may wait for it
            lambda: ensure_core(connection, self.settings), self.settings.startup_wait_s, "worker"
        )
        publishing = await publishing_channel(connection)
        recorder = await EventRecorder.open(publishing, names, self.settings.limits, self._witness)
        settler = self._settler = Settler(
            publishing,
            names,
            self._clock,
            self._acks,
            delay_group_size=self.settings.quorum_group_size,
            body_bytes=self.settings.dead_letter_body_bytes,
        )
        await settler.open()
        work = await publishing.get_exchange(names.work, ensure=False)
        dispatcher = Dispatcher(recorder, work, self._clock, self.settings.limits)
        await self._start_attempts(connection, names, recorder, settler, dispatcher)
        beats = await publishing_channel(connection)
        self._heartbeat = HeartbeatSender(beats, self.settings, self._running_attempts, self._clock)
        self._heartbeat.start()
        self.supervisor = Supervisor(
            self.settings, connection, recorder, settler, dispatcher, self._clock
        )
        await self.supervisor.start()
        await self._consume(connection, names)
        await self._serve_metrics(recorder, connection, names)
        self._log_started(connection)

    async def _start_attempts(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        recorder: EventRecorder,
        settler: Settler,
        dispatcher: Dispatcher,
    ) -> None:
        """The claim book (following the log's starts), the attempt processor and the
        child service: everything a delivery needs before the first one arrives."""
        claims = self._claims = ClaimBook(connection, names, witness=self._witness)
        await claims.start()
        self._processor = AttemptProcessor(
            tasks=self.tasks,
            recorder=recorder,
            settler=settler,
            pool=self._pool,
            worker_id=self.settings.worker_id,
            clock=self._clock,
            running=self._running_attempts,
            claims=claims,
            accepting=lambda: self._accepting,
            limits=self.settings.limits,
            metrics=None if self.metrics is None else self.metrics.attempts,
        )
        self._children = ChildService(
            connection, names, dispatcher, recorder, self._slots, self._clock
        )
        await self._children.start_watching()
        self._processor.children = self._children
        self._writes = self._processor.writes

    async def _serve_metrics(
        self, recorder: EventRecorder, connection: AbstractRobustConnection, names: Names
    ) -> None:
        """Count attempts, group commits and the supervisor's state, and serve them."""
        metrics, port = self.metrics, self.settings.metrics_port
        if metrics is None or port is None:
            return
        recorder.committer.metrics = metrics.commits
        metrics.watch_running(lambda: len(self._running_attempts))
        metrics.watch_supervisor(lambda: self.supervisor)
        metrics.watch_untrusted(lambda: connection_gate(connection).dropped)

        async def refresh() -> None:
            """The stream's tail, for the active supervisor's log lag."""
            if self.supervisor is not None and self.supervisor.active:
                self.supervisor.stream_tail = await tail_offset(connection, names)

        self._metrics_server, self.metrics_port = await serve_metrics(
            metrics.registry, port, refresh
        )

    def _log_started(self, connection: FailoverConnection) -> None:
        """The line that says what this worker is connected to and what it serves, so a
        worker pointed at the wrong broker, vhost or namespace is seen at a glance."""
        log.info(
            "worker.started",
            broker=connection.address.shown,
            vhost=connection.address.vhost,
            namespace=self.settings.namespace,
            targets=sorted(self.tasks),
            queues=self.queues,
            work_queues=[Names(self.settings.namespace).work_queue(q) for q in self.queues],
            concurrency=self.settings.concurrency,
        )

    async def _consume(self, connection: AbstractRobustConnection, names: Names) -> None:
        """Declare and bind this worker's work queues, and consume them: the last step."""
        consuming = await consuming_channel(connection, self.settings.work_prefetch)
        for queue_name, targets in self._targets_by_queue().items():
            queue = await declare_queue(consuming, work_queue(names, self.settings, queue_name))
            await self._bind(queue, names, targets)
            tag = await queue.consume(self._on_message, no_ack=False)
            self._consumers.append((queue, tag))

    def _targets_by_queue(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for queue_name in self.queues:
            grouped[queue_name] = []
        for name, item in self.tasks.items():
            if item.spec.queue in grouped:
                grouped[item.spec.queue].append(name)
        return grouped

    @staticmethod
    async def _bind(queue: AbstractQueue, names: Names, targets: list[str]) -> None:
        for target in targets:
            await queue.bind(names.work, routing_key=target)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """Hand the delivery to a task of our own and return.

        aiormq cancels the tasks it runs consumer callbacks in when their channel
        closes; an attempt must survive a reconnect, so it runs in our task, which
        only ``stop`` cancels.
        """
        self._acks.delivered(message)
        handler = asyncio.create_task(self._handle(message))
        self._running.add(handler)
        handler.add_done_callback(self._running.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            async with self._slots:
                assert self._processor is not None
                await self._processor.handle(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("work.handler_failed", routing_key=message.routing_key)
            await self._give_back(message)

    async def _give_back(self, message: AbstractIncomingMessage) -> None:
        """A delivery the handler failed on before settling it goes back to the queue
        (its redelivery is checked against the log), so it cannot hold up the acks
        of the deliveries after it."""
        if not self._acks.unsettled(message) or self._settler is None:
            return
        with contextlib.suppress(Exception):
            await self._settler.requeue(message)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking work; running attempts get ``grace_s`` to finish, then are recorded
        as lost (and follow their policy); messages not yet started go back to the queue."""
        self._accepting = False
        if self._heartbeat is not None:
            self._heartbeat.stopping = True
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers.clear()
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace_s)
        unfinished = set(self._running)
        for pending in unfinished:
            pending.cancel()
        if unfinished:
            await asyncio.wait(unfinished, timeout=30)
        if self._writes is not None:  # outcomes recorded, not yet seen on the log
            await self._writes.drain(SEEN_ON_STOP_S)
        await self._close()
        log.info("worker.stopped", interrupted=len(unfinished))

    async def _close(self) -> None:
        """Stop every part that was started, each whatever the others did: the connection
        is closed last, always."""
        steps: list[Callable[[], Awaitable[Any]]] = []
        if self._metrics_server is not None:
            steps.append(self._metrics_server.cleanup)
        for part in (self.supervisor, self._children, self._claims, self._heartbeat):
            if part is not None:
                steps.append(part.stop)
        if self._connection is not None:
            steps.append(self._connection.close)
        for step in steps:
            try:
                await asyncio.wait_for(step(), CLOSE_STEP_S)
            except Exception as err:  # a timeout too: a stuck broker must not hold the stop
                log.warning("worker.close_failed", step=step.__qualname__, error=repr(err))
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def threads_still_busy(self) -> bool:
        """A sync function that outlived its timeout or the grace period is still running."""
        return self._pool.busy > 0
