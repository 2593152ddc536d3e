"""One attempt, one run, whatever the broker did (SPEC 7.8, 7.11).

Copies of a work message (a re-publish after a lost confirm, a recovery, a
redelivery, or the same message simply published again) each record a start;
the first start of the attempt in log order wins, and only its try runs the body.
The attempt must be open on the log (requested, or a retry scheduled) for any copy
to try at all.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika

from ricochet.contracts import (
    ATTEMPT_HEADER,
    DUE_AT_HEADER,
    REQUESTED_AT_HEADER,
    WorkMessage,
    encode,
)
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import (
    bind_target,
    eventually,
    log_events,
    record_opening,
    running_worker,
)

COPIES = 20


async def publish_copies(settings: Settings, body: bytes, headers: dict[str, int]) -> None:
    """The same work message, ``COPIES`` times at once, as any publisher could."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Names(settings.namespace).work)
        copies = [
            aio_pika.Message(
                body,
                headers=dict(headers),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=uuid.uuid4().hex,
            )
            for _ in range(COPIES)
        ]
        await asyncio.gather(*(exchange.publish(m, routing_key="t.counted") for m in copies))
    finally:
        await connection.close()


def now_ms() -> int:
    return round(datetime.now(UTC).timestamp() * 1000)


async def run_copies_on_two_workers(
    settings: Settings, attempt: int, queued_before: bool = False
) -> tuple[str, list[str]]:
    """Publish ``COPIES`` copies of one attempt's message while two workers run (or
    before they start: ``queued_before``), and let them race for the copies.

    Returns the execution id and the claims its starts named, in log order.
    """
    await bind_target(settings, "t.counted")
    execution_id = uuid.uuid4().hex
    await record_opening(settings, execution_id, attempt)
    work = WorkMessage(execution_id=execution_id, target="t.counted", args=(), kwargs={})
    headers = {ATTEMPT_HEADER: attempt, REQUESTED_AT_HEADER: now_ms(), DUE_AT_HEADER: now_ms()}
    if queued_before:
        await publish_copies(settings, encode(work), headers)
    async with (
        running_worker(settings, tasks.ALL),
        running_worker(settings.model_copy(update={"worker_id": "second:1"}), tasks.ALL),
    ):
        if not queued_before:
            await asyncio.sleep(1.0)  # the claim books follow the log from their start
            headers = {**headers, REQUESTED_AT_HEADER: now_ms(), DUE_AT_HEADER: now_ms()}
            await publish_copies(settings, encode(work), headers)

        async def outcome_recorded() -> bool:
            events = await log_events(settings, execution_id)
            return any(e.type == "attempt_succeeded.v1" for e in events)

        await eventually(outcome_recorded, timeout=30, every=0.2)
        await asyncio.sleep(1.0)  # let any late copy get as far as it would
    starts = [e for e in await log_events(settings, execution_id) if e.type == "attempt_started.v2"]
    return execution_id, [getattr(e, "claim", "") for e in starts]


async def test_twenty_copies_of_a_first_attempt_run_it_once(
    settings: Settings, client: Client
) -> None:
    """Given 20 copies of one first attempt published while two workers run, when they
    race for them, then the body runs once: the tries whose start came later on the log
    stepped back."""
    execution_id, claims = await run_copies_on_two_workers(settings, attempt=1)
    assert 1 == tasks.RUNS[(execution_id, 1)]
    assert len(claims) >= 2, "the copies must have raced to start, or nothing was tested"
    assert len(set(claims)) == len(claims), "every try names its own claim"


async def test_copies_of_a_retry_run_it_once(settings: Settings, client: Client) -> None:
    """The start claim decides for every attempt, not only the first (retries > 0)."""
    execution_id, claims = await run_copies_on_two_workers(settings, attempt=2)
    assert 1 == tasks.RUNS[(execution_id, 2)]
    assert len(claims) >= 2


async def test_copies_queued_before_the_workers_started_run_once(
    settings: Settings, client: Client
) -> None:
    """Copies older than the workers' claim books are checked against the log itself."""
    execution_id, _ = await run_copies_on_two_workers(settings, attempt=1, queued_before=True)
    assert 1 == tasks.RUNS[(execution_id, 1)]
