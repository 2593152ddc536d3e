"""Broker faults under load on the single test broker: nothing stuck, nothing run twice.

SPEC 7.1, 7.2 and 7.8 through ``rabbitmqctl stop_app; sleep 5; start_app`` and through
``rabbitmqctl close_all_connections``, each under the load of issue 15 (scaled: see
``tests/integration/faults.py``), counted from a ledger the task bodies write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiormq.exceptions import ChannelInvalidStateError

from ricochet.contracts import Event
from ricochet.engine import Status
from ricochet.workers.client.client import Client
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import running_worker


class StartUnconfirmedOnce:
    """An event recorder whose first start publish fails as it does while a reconnect is
    restoring channels one by one: the consumer's channel is back (a delivery came on
    it), the publishing channel not yet."""

    def __init__(self, recorder: EventRecorder) -> None:
        self._recorder = recorder
        self.failed = 0

    async def record_once(self, events: Sequence[Event], claim: str) -> None:
        if not self.failed:
            self.failed += 1
            raise ChannelInvalidStateError("the publishing channel is not restored yet")
        await self._recorder.record_once(events, claim)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)


async def test_a_delivery_whose_start_did_not_land_goes_back(
    settings: Settings, client: Client
) -> None:
    """Given a delivery on a live channel whose start publish failed and is not on the log,
    when the worker gives up that try, then the message goes back to the queue (it was
    left unacked on a live channel, holding up every later ack of that channel until
    prefetch ran out and the worker stalled), and the attempt runs once."""
    async with running_worker(settings, tasks.ALL) as worker:
        processor = worker._processor
        assert processor is not None
        flaky = StartUnconfirmedOnce(processor.recorder)
        processor.recorder = flaky  # type: ignore[assignment]
        handle = await client.submit("t.counted")
        state = await handle.wait(timeout=30)
    assert flaky.failed == 1
    assert state.status is Status.SUCCEEDED
    assert [a.number for a in state.attempts] == [1]
    assert tasks.RUNS[(handle.id, 1)] == 1
