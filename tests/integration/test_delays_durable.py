"""Delayed retries survive a broker restart: those whose TTL runs out while the broker is
down, and those that wait across the restart (SPEC 7.1, 7.3; issue 15 item 1).

Dead-lettering out of a classic queue is at-most-once: retries expiring while the node
stopped were lost. Delay queues are quorum queues with at-least-once dead-lettering.
Each test counts what it published and what arrived; the broker is started again
whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from ricochet import current_attempt, task
from ricochet.contracts import TERMINAL_TYPES, AttemptStarted, ExecutionSucceeded
from ricochet.engine import Status
from ricochet.workers.amqp.topology import declare_core
from ricochet.workers.client.client import Client
from ricochet.workers.delivery.disposition import Retry
from ricochet.workers.delivery.settle import Settler
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, eventually, log_events, running_worker
from tests.integration.processes import rabbitmqctl

TARGET = "durable.retried"
DOWN_S = 5.0
EXPIRING_DELAYS_S = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Due while the broker stops or is down (stop_app takes a second or two here)."""
WAITING_DELAY_S = 15.0
"""Due after the broker is back: these wait across the restart."""
PER_DELAY = 60


def broker_down_for(seconds: float) -> None:
    """``stop_app``, wait, ``start_app``: the broker is started again whatever happens."""
    try:
        rabbitmqctl("stop_app")
        time.sleep(seconds)
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")


async def connect_when_up(
    settings: Settings, patience_s: float = 60.0
) -> aio_pika.abc.AbstractConnection:
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await aio_pika.connect(settings.amqp_url)
        except (OSError, aio_pika.exceptions.AMQPError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def log_readable_again(settings: Settings, patience_s: float = 60.0) -> None:
    """After ``start_app`` the broker answers before every stream is back (a declare
    can still fail with 'home node ... is down'): wait until the log reads again."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            await log_events(settings)
            return
        except (OSError, aio_pika.exceptions.AMQPError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def schedule(settings: Settings, delays_s: list[float]) -> dict[str, datetime]:
    """One retry per delay, through ``Settler.schedule`` (the workers' own path), all
    confirmed; returns each retry's body -> due time."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        names = await declare_core(channel, settings)
        await bind_target(settings, TARGET)
        settler = await Settler(channel, names).open()
        now = datetime.now(UTC)
        due = {f'{{"n": {i}}}': now + timedelta(seconds=d) for i, d in enumerate(delays_s)}
        retries = [
            Retry(body.encode(), TARGET, 2, delay_s, due[body])
            for body, delay_s in zip(due, delays_s, strict=True)
        ]
        await asyncio.gather(*(settler.schedule(retry) for retry in retries))
    finally:
        await connection.close()
    return due


@asynccontextmanager
async def arrivals(settings: Settings) -> AsyncIterator[dict[str, list[float]]]:
    """Body -> arrival times (epoch s) on the work queue, while the block runs."""
    arrived: dict[str, list[float]] = {}

    async def on_message(message: AbstractIncomingMessage) -> None:
        arrived.setdefault(message.body.decode(), []).append(time.time())
        await message.ack()

    connection = await connect_when_up(settings)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.get_queue(f"{settings.namespace}.work.default", ensure=False)
        await queue.consume(on_message, no_ack=False)
        yield arrived
    finally:
        await connection.close()


async def test_retries_due_while_the_broker_is_down_all_arrive(settings: Settings) -> None:
    """Retries expiring during stop_app/start_app and retries waiting across it: all arrive,
    none before it is due."""
    delays = [d for d in EXPIRING_DELAYS_S for _ in range(PER_DELAY)]
    delays += [WAITING_DELAY_S] * PER_DELAY
    due = await schedule(settings, delays)
    await asyncio.to_thread(broker_down_for, DOWN_S)
    async with arrivals(settings) as arrived:
        with suppress(AssertionError):  # the counts below say what is missing
            await eventually(lambda: len(arrived) == len(due), timeout=WAITING_DELAY_S + 30)
        missing = sorted(set(due) - set(arrived))
        assert not missing, f"{len(missing)} of {len(due)} retries lost: {missing[:5]}"
        early = [b for b, at in arrived.items() if min(at) < due[b].timestamp() - 0.005]
        assert not early, f"started before due: {early[:5]}"


@task(retries=(1, 4.0), name="durable.fails_once")
def fails_once(n: int) -> int:
    """Attempt 1 fails; its retry waits 4 s in a delay queue."""
    context = current_attempt()
    assert context is not None
    if context.attempt == 1:
        raise RuntimeError("first attempt fails")
    return n


async def submit_until_all_wait(settings: Settings, count: int) -> list[str]:
    """``count`` executions whose first attempt failed, every retry waiting in its delay
    queue; the worker and client are gone again, so nothing runs through the restart."""
    async with running_worker(settings, [fails_once]), Client(settings) as client:
        handles = await asyncio.gather(
            *(client.submit("durable.fails_once", [i]) for i in range(count))
        )

        def all_waiting() -> bool:
            states = [client.state(h.id) for h in handles]
            return all(s is not None and s.status is Status.RETRY_SCHEDULED for s in states)

        await eventually(all_waiting, timeout=30, every=0.02)
    return [h.id for h in handles]


async def test_executions_whose_retries_wait_through_a_restart_all_succeed(
    settings: Settings,
) -> None:
    """100 executions fail once; with every retry waiting, the broker restarts; a worker
    started after it runs every retry: all succeed, each with attempts 1 and 2 only.

    Recovery (which re-publishes retries overdue by ``retry_recovery_s``) is pushed out of
    reach, so only the delay queues can deliver the retries.
    """
    patient = settings.model_copy(update={"retry_recovery_s": 3600.0})
    ids = await submit_until_all_wait(patient, 100)
    await asyncio.to_thread(broker_down_for, DOWN_S)
    await log_readable_again(settings)
    ended: dict[str, str] = {}

    async def all_ended() -> bool:
        events = await log_events(settings)
        ended.update({e.execution_id: e.type for e in events if e.type in TERMINAL_TYPES})
        return set(ids) <= set(ended)

    async with running_worker(patient, [fails_once]):
        with suppress(AssertionError):  # the counts below say what is missing
            await eventually(all_ended, timeout=60, every=1.0)
    stuck = sorted(set(ids) - set(ended))
    assert not stuck, f"{len(stuck)} of {len(ids)} never ended: {stuck[:5]}"
    events = await log_events(settings)
    assert all(isinstance(e, ExecutionSucceeded) for e in events if e.type in TERMINAL_TYPES)
    attempts: dict[str, set[int]] = {}
    for event in events:
        if isinstance(event, AttemptStarted):
            attempts.setdefault(event.execution_id, set()).add(event.attempt)
    assert all(attempts[i] == {1, 2} for i in ids)
