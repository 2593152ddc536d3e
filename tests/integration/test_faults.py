"""Broker faults under load on the single test broker: nothing stuck, nothing run twice.

SPEC 7.1, 7.2, 7.4, 7.5 and 7.8 through ``rabbitmqctl stop_app; sleep 5; start_app``
and through ``rabbitmqctl close_all_connections``, each under issue 15's load (2 worker
processes with ``--concurrency 16``; 2,000 ``retries=0`` executions and 500 with
``retries=(2, 0.5)`` whose first attempt fails), counted from the log and from the
ledger the task bodies write (``tests/integration/faults.py``).

The restart stops the shared broker: run these under the exclusive lock
(``flock -x /tmp/ricochet-broker.lock``). The broker's application is started again
whatever happens (in the fault itself, and in a fixture's teardown).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiormq.exceptions import ChannelInvalidStateError

from ricochet.contracts import Event
from ricochet.engine import Status
from ricochet.workers.client.client import Client
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.settings import Settings
from tests.integration import fault_runs, faults, tasks
from tests.integration.harness import running_worker

LOAD = faults.Load(once=2000, retried=500)


@pytest.fixture
def broker_restored() -> Iterator[None]:
    """The broker's application runs again after the test, whatever the test did."""
    try:
        yield
    finally:
        faults.restore_broker()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["restart", "close_all_connections"])
async def test_a_fault_under_load(
    fault: str, settings: Settings, client: Client, tmp_path: Path, broker_restored: None
) -> None:
    """Given 2,500 executions draining on two workers, when the broker restarts (or cuts
    every connection) once some have run: every execution ends and succeeds (no live
    attempt is declared lost), none is stuck, no attempt runs twice (a ``retries=0``
    body included), no execution runs more than 1 + retries attempts, every delayed
    retry runs, and the projector, which lived through the fault, equals a fresh fold
    of the log."""
    counts, ran_before = await fault_runs.single_broker(settings, client, tmp_path, fault, LOAD)
    print(f"\n{ran_before} bodies had run when the fault came\n{faults.render([counts])}")
    assert ran_before < LOAD.executions / 2, "the fault must meet most of the load"
    assert counts.stuck == 0, "none stuck:\n" + "\n".join(counts.failures)
    assert counts.failed == 0, "no live attempt declared lost:\n" + "\n".join(counts.failures)
    assert counts.ended == LOAD.executions
    assert counts.double_runs == 0
    assert counts.over_limit == 0
    assert counts.retries_run == LOAD.retried
    assert counts.projector_matches


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
