"""Nothing recorded is left behind: the supervisor publishes what a dead process did not.

A request whose requester died before publishing its work, and a retry whose
message was lost while its scheduler lives on, both run, once (SPEC 7.1, 7.8).
"""

from __future__ import annotations

import uuid

import aio_pika

from ricochet.contracts import Event, encode_batch
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import bind_target, log_events, running_worker
from tests.unit.builders import failed, requested, retry_scheduled, started


async def record_only(settings: Settings, events: list[Event]) -> None:
    """Put events on the log and publish nothing else, as a process that died would."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(settings.namespace).events)
        message = aio_pika.Message(
            encode_batch(events), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await exchange.publish(message, routing_key="")
    finally:
        await connection.close()


def of(event: Event, execution_id: str, worker: str) -> Event:
    changes: dict[str, object] = {"execution_id": execution_id, "worker": worker}
    if event.type.startswith("execution_requested"):
        changes.update(target="t.counted", args=(), kwargs={}, idempotency_key=None)
    return event.model_copy(update=changes)


async def test_a_request_whose_work_was_never_published_runs_once(
    settings: Settings, client: Client
) -> None:
    """Given a request on the log and no work message (its submitter died in between),
    the supervisor publishes its first attempt once the orphan bound passed."""
    fast = settings.model_copy(update={"orphan_after_s": 1.0})
    await bind_target(fast, "t.counted")
    execution_id = uuid.uuid4().hex
    handle = client.follow(execution_id)
    async with running_worker(fast, tasks.ALL):
        await record_only(fast, [of(requested(0), execution_id, "gone:1")])
        final = await handle.wait(timeout=30)
    assert "counted" == final.result
    assert 1 == tasks.RUNS[(execution_id, 1)]


async def test_a_retry_lost_while_its_scheduler_lives_runs_once(
    settings: Settings, client: Client
) -> None:
    """Given attempt 1 failed and attempt 2 scheduled by a worker that is alive, but whose
    retry message was lost, the supervisor publishes it once it is overdue past the
    bound; it does not wait for the scheduler to fall silent."""
    fast = settings.model_copy(update={"retry_recovery_s": 1.0})
    await bind_target(fast, "t.counted")
    execution_id = uuid.uuid4().hex
    handle = client.follow(execution_id)
    async with running_worker(fast, tasks.ALL) as worker:
        alive = worker.settings.worker_id
        history: list[Event] = [
            requested(0),
            started(1, 1),
            failed(1, 2),
            retry_scheduled(1, 2, delay_s=1),
        ]
        await record_only(fast, [of(event, execution_id, alive) for event in history])
        final = await handle.wait(timeout=30)
    assert "counted" == final.result
    assert 1 == tasks.RUNS[(execution_id, 2)]
    starts = [e for e in await log_events(fast, execution_id) if e.type == "attempt_started.v2"]
    assert [1, 2] == [e.attempt for e in starts]
