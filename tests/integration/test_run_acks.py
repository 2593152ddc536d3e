"""Run acks on a real broker: a delivery the handler failed on must not hold up the rest."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from aio_pika.abc import AbstractIncomingMessage

from ricochet.workers.client.client import Client
from ricochet.workers.runtime.attempt import AttemptProcessor
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import running_worker

pytestmark = pytest.mark.broker


class HandlerBroke(RuntimeError):
    """Stands for a bug in the handler before it settled its delivery."""


class FailsOnce:
    """The worker's processor, except that its first delivery breaks before settling."""

    def __init__(self, processor: AttemptProcessor) -> None:
        self._processor = processor
        self.failed = 0

    async def handle(self, message: AbstractIncomingMessage) -> None:
        if not self.failed:
            self.failed += 1
            raise HandlerBroke("before settling")
        await self._processor.handle(message)


async def test_a_delivery_the_handler_failed_on_is_requeued_and_runs_once(
    settings: Settings, client: Client
) -> None:
    """Its execution still completes (redelivered, checked against the log, run), and so
    do the ones delivered after it, whose acks wait for the runs before them."""
    async with running_worker(settings, tasks.ALL) as worker:
        processor = worker._processor
        assert processor is not None
        failing = FailsOnce(processor)
        worker._processor = cast(AttemptProcessor, failing)
        handles = [await client.submit("t.ok", [n]) for n in range(5)]
        results = await asyncio.gather(*(h.result(timeout=20) for h in handles))

    assert results == [{"doubled": 2 * n} for n in range(5)]
    assert failing.failed == 1
