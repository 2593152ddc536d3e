"""Heartbeats: every worker says, every interval, that it lives and what it runs.

Heartbeats are transient on purpose (a signal, not a fact: an old one is
worthless) and expire after the loss window, so they never pile up when no
supervisor is running.

A worker whose heartbeats could not get through for longer than the loss window
(the broker away, a partition, the process paused) says so once they do again
(``worker.cut_off``): its running attempts may have been declared lost meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable

import aio_pika
from aio_pika.abc import AbstractChannel

from ricochet.contracts import Heartbeat, RunningAttempt, encode
from ricochet.engine.vigil import AttemptKey, OwnHeartbeats
from ricochet.workers.amqp.topology import Names
from ricochet.workers.clock import Clock
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

log = get_logger(__name__)

CUT_OFF_LISTED = 20
"""Attempts named in a ``worker.cut_off`` line (the count is always given)."""
CUT_OFF_MEANING = (
    "no heartbeat of this worker reached the broker for longer than the loss window,"
    " so the supervisor may have declared its running attempts lost: those without"
    " retries ended failed and never run again; those with retries left may run again"
    " on another worker, beside this run. What this worker records for them now is"
    " ignored if a loss was recorded first (the first outcome of an attempt wins)."
)


class RunningAttempts:
    """The attempts this process vouches for: from just before ``AttemptStarted``
    is published until the outcome is recorded.

    Counted, not a set: two copies of one work message can both be in this
    process (one wins the claim, SPEC 7.8); the loser stepping back must not
    stop the winner from being vouched for.
    """

    def __init__(self) -> None:
        self._keys: Counter[AttemptKey] = Counter()

    def add(self, key: AttemptKey) -> None:
        self._keys[key] += 1

    def discard(self, key: AttemptKey) -> None:
        self._keys[key] -= 1
        if self._keys[key] <= 0:
            del self._keys[key]

    def keys(self) -> list[AttemptKey]:
        return sorted(self._keys)

    def snapshot(self) -> tuple[RunningAttempt, ...]:
        return tuple(RunningAttempt(execution_id=e, attempt=a) for e, a in sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


class HeartbeatSender:
    """Publishes a heartbeat every ``settings.heartbeat_s`` until stopped."""

    def __init__(
        self,
        channel: AbstractChannel,
        settings: Settings,
        running: RunningAttempts,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._settings = settings
        self._running = running
        self._clock = clock
        self._monotonic = monotonic
        self._own = OwnHeartbeats(settings.loss_window_s)
        self._queue = Names(settings.namespace).supervisor
        self._task: asyncio.Task[None] | None = None
        self.stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ricochet-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("heartbeat.failed", error=repr(err))
            else:
                self._went_through()
            await asyncio.sleep(self._settings.heartbeat_s)

    def _went_through(self) -> None:
        """Say once, when heartbeats get through again, that this worker was cut off for
        longer than the loss window, and what its running attempts may have become."""
        gap = self._own.sent(self._monotonic())
        if gap is None:
            return
        running = self._running.keys()
        log.warning(
            "worker.cut_off",
            seconds=round(gap, 3),
            loss_window_s=self._settings.loss_window_s,
            running=len(running),
            attempts=[f"{e}/{a}" for e, a in running[:CUT_OFF_LISTED]],
            meaning=CUT_OFF_MEANING,
        )

    async def beat(self) -> None:
        heartbeat = Heartbeat(
            worker=self._settings.worker_id,
            at=self._clock(),
            running=self._running.snapshot(),
            stopping=self.stopping,
        )
        message = aio_pika.Message(
            encode(heartbeat),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            expiration=self._settings.loss_window_s,
            type=heartbeat.type,
            message_id=uuid.uuid4().hex,
        )
        await self._channel.default_exchange.publish(
            message, routing_key=self._queue, mandatory=True, timeout=self._settings.heartbeat_s * 3
        )
