"""Heartbeats: every worker says, every interval, that it lives and what it runs.

Heartbeats are transient on purpose (a signal, not a fact: an old one is
worthless) and expire after the loss window, so they never pile up when no
supervisor is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter

import aio_pika
from aio_pika.abc import AbstractChannel

from ricochet.contracts import Heartbeat, RunningAttempt, encode
from ricochet.engine.vigil import AttemptKey
from ricochet.workers.amqp.topology import Names
from ricochet.workers.clock import Clock
from ricochet.workers.logs import get_logger
from ricochet.workers.settings import Settings

log = get_logger(__name__)


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

    def snapshot(self) -> tuple[RunningAttempt, ...]:
        return tuple(RunningAttempt(execution_id=e, attempt=a) for e, a in sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


class HeartbeatSender:
    """Publishes a heartbeat every ``settings.heartbeat_s`` until stopped."""

    def __init__(
        self, channel: AbstractChannel, settings: Settings, running: RunningAttempts, clock: Clock
    ) -> None:
        self._channel = channel
        self._settings = settings
        self._running = running
        self._clock = clock
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
            await asyncio.sleep(self._settings.heartbeat_s)

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
