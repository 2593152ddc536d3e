"""Triggers across a hand-over of the supervisor: none starts twice, none waits for nothing.

Issue 22, items 2 and 5. A worker that holds the supervisor and is stopped (SIGTERM,
a rolling deploy) settles every trigger it turned into an execution (or judged
malformed) before it lets the triggers go; an unkeyed trigger redelivered after a
hand-over is matched, by its message id, to the execution it started; and a trigger
whose request was recorded but whose work never went out gets its work at once when
it comes back, not ``orphan_after_s`` later.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import aio_pika
import orjson
import pytest
from aio_pika import Message
from aio_pika.abc import AbstractExchange

from ricochet.contracts import ExecutionRequested
from ricochet.workers.amqp.broker import publish_until_confirmed
from ricochet.workers.client import dispatch
from ricochet.workers.client.client import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.bare_amqp import BareChannel
from tests.integration.harness import dead_letters, eventually, log_events, running_worker
from tests.integration.processes import Fleet, WorkerProcess, fleet, rabbitmqctl, vhost_of

TRIGGERS = 1_500
RATE = 300.0
"""Triggers a second, published in ticks of ``TICK`` seconds."""
TICK = 0.05
MALFORMED_EVERY = 20
"""Every 20th trigger is not JSON: it is dead-lettered, and must be exactly once."""
STOP_AT = 500
"""The supervisor's worker gets SIGTERM once this many triggers are published."""


def trigger(index: int) -> tuple[bytes, str | None]:
    """Trigger ``index``'s body, and its message id: half the senders set one (odd
    indices, through aio-pika), half do not (even ones, through a bare client)."""
    if index % MALFORMED_EVERY == 0:
        return f"not json {index}".encode(), None
    body = orjson.dumps({"target": "p.quick", "args": [index]})
    return body, (f"m-{index}" if index % 2 else None)


async def publish_stream(settings: Settings, stop_at: int, stop: asyncio.Event) -> None:
    """``TRIGGERS`` triggers at ``RATE`` a second, each confirmed; ``stop`` is set once
    ``stop_at`` of them are out."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.triggers")
        async with BareChannel(settings.amqp_url) as bare:
            per_tick = round(RATE * TICK)
            began = time.monotonic()
            for first in range(0, TRIGGERS, per_tick):
                batch = [trigger(i) for i in range(first, min(first + per_tick, TRIGGERS))]
                without = [body for body, message_id in batch if message_id is None]
                await asyncio.gather(
                    bare.publish(f"{settings.namespace}.triggers", "p.quick", without),
                    *(_publish_to(exchange, b, m, "p.quick") for b, m in batch if m is not None),
                )
                if first + len(batch) >= stop_at:
                    stop.set()
                ahead = began + (first + len(batch)) / RATE - time.monotonic()
                await asyncio.sleep(max(ahead, 0))
    finally:
        await connection.close()


async def supervising(worker: WorkerProcess) -> None:
    """Until ``worker`` is the active supervisor, caught up with the log."""
    await eventually(lambda: '"supervisor.caught_up"' in worker.text(), timeout=30)


def requests_by_trigger(events: Sequence[object]) -> Counter[int]:
    """How many executions each trigger index started (its index is its only argument)."""
    return Counter(
        int(e.args[0])  # type: ignore[arg-type]
        for e in events
        if isinstance(e, ExecutionRequested) and e.source == "trigger"
    )


def runs_by_trigger(events: Sequence[object], workers: Fleet) -> Counter[int]:
    """How many times each trigger's body ran, from the bodies' own files."""
    runs: Counter[int] = Counter()
    for e in events:
        if isinstance(e, ExecutionRequested) and e.source == "trigger":
            runs[int(e.args[0])] += len(workers.runs(e.execution_id))  # type: ignore[arg-type]
    return runs


@pytest.mark.timeout(240)
async def test_a_sigterm_of_the_supervisor_mid_stream_starts_no_trigger_twice(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """1,500 unkeyed triggers at ~300/s (every 20th malformed; half with a message id,
    half without); the worker holding the supervisor gets SIGTERM after 500 and another
    takes over: every good trigger starts exactly one execution whose body runs once,
    and every malformed one is dead-lettered exactly once."""
    good = [i for i in range(TRIGGERS) if i % MALFORMED_EVERY]
    malformed = {f"not json {i}" for i in range(0, TRIGGERS, MALFORMED_EVERY)}
    async with fleet(settings, tmp_path) as workers:
        first = await workers.start()
        await supervising(first)
        second = await workers.start()
        stop = asyncio.Event()
        publishing = asyncio.create_task(publish_stream(settings, STOP_AT, stop))
        await stop.wait()
        first.signal(signal.SIGTERM)
        await publishing
        assert 0 == await first.exited(timeout=60), first.text()[-3000:]
        await supervising(second)

        async def all_ran() -> bool:
            runs = runs_by_trigger(await log_events(settings), workers)
            return all(runs[i] for i in good)

        await eventually(all_ran, timeout=120, every=1.0)
        await asyncio.sleep(3.0)  # a second start, had there been one, is on the log by now
        events = await log_events(settings)
        requested, runs = requests_by_trigger(events), runs_by_trigger(events, workers)
    dead = Counter(m.body.decode() for m in await dead_letters(settings, 2 * len(malformed), 5))
    twice = {i: n for i, n in requested.items() if n != 1}
    ran_twice = {i: n for i, n in runs.items() if n != 1}
    dead_twice = {body: n for body, n in dead.items() if n != 1}
    print(
        f"\n{len(twice)} triggers started more than one execution, {len(ran_twice)} bodies"
        f" ran other than once, {len(dead_twice)} malformed triggers dead-lettered twice"
    )
    assert set(requested) == set(good)
    assert not twice, f"triggers that started {sorted(twice.items())[:20]} executions"
    assert not ran_twice, f"triggers whose bodies ran {sorted(ran_twice.items())[:20]} times"
    assert set(dead) == malformed
    assert not dead_twice, f"dead-lettered twice: {sorted(dead_twice)[:20]}"


async def publish_raw(settings: Settings, body: bytes, message_id: str | None) -> None:
    """A trigger as any AMQP client sends one, with or without a message id."""
    if message_id is None:
        async with BareChannel(settings.amqp_url) as bare:
            await bare.publish(f"{settings.namespace}.triggers", "t.ok", [body])
        return
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.triggers")
        await _publish_to(exchange, body, message_id, "t.ok")
    finally:
        await connection.close()


async def _publish_to(
    exchange: aio_pika.abc.AbstractExchange, body: bytes, message_id: str | None, key: str
) -> None:
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
    )
    await exchange.publish(message, routing_key=key)


def requested_with(events: Sequence[object], first_arg: int) -> int:
    return sum(isinstance(e, ExecutionRequested) and e.args[:1] == (first_arg,) for e in events)


async def test_an_unkeyed_trigger_is_matched_by_its_message_id_after_a_hand_over(
    settings: Settings, client: Client
) -> None:
    """A trigger with a message id, sent again (as a redelivery is) to the next
    supervisor, starts nothing new; the same body without a message id, published
    twice and once more, starts three executions: separate publishes both run."""
    with_id = orjson.dumps({"target": "t.ok", "args": [1]})
    without = orjson.dumps({"target": "t.ok", "args": [2]})
    async with running_worker(settings, tasks.ALL) as first:
        await publish_raw(settings, with_id, "celery-task-1")
        await publish_raw(settings, without, None)
        await publish_raw(settings, without, None)
        await eventually(
            lambda: first.supervisor and first.supervisor.intake.counts["started"] == 3, 30
        )
    async with running_worker(settings, tasks.ALL) as second:
        assert second.supervisor is not None
        await publish_raw(settings, with_id, "celery-task-1")
        await publish_raw(settings, without, None)
        intake = second.supervisor.intake
        await eventually(lambda: intake.counts["duplicate"] + intake.counts["started"] == 2, 30)
    events = await log_events(settings)
    assert 1 == requested_with(events, 1), "the copy of the message started nothing"
    assert 3 == requested_with(events, 2), "each publish with no message id started one"


async def test_a_trigger_cut_off_between_its_request_and_its_work_starts_at_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyed trigger's request is recorded, then every connection of the vhost is
    closed while its work is being published (held there, so the cut falls between the
    two steps every time): the redelivered trigger, a duplicate, sees that its execution
    never started and publishes the work again. It starts within seconds, not after
    ``orphan_after_s`` (300 s)."""
    key = f"cut-{uuid.uuid4().hex}"
    execution_id = execution_id_for(key)
    held, release = asyncio.Event(), asyncio.Event()
    publish = publish_until_confirmed

    async def held_once(exchange: AbstractExchange, message: Message, routing_key: str) -> None:
        if not held.is_set():
            held.set()
            await release.wait()  # cut off here (or let go at the end, a harmless copy)
        await publish(exchange, message, routing_key)

    monkeypatch.setattr(dispatch, "publish_until_confirmed", held_once)
    async with running_worker(settings, tasks.ALL) as worker:
        assert worker.supervisor is not None
        intake = worker.supervisor.intake
        body = orjson.dumps({"target": "t.ok", "args": [5], "idempotency_key": key})
        await publish_raw(settings, body, None)
        await asyncio.wait_for(held.wait(), 30)
        await eventually(lambda: intake.knows(key), timeout=30)  # its request is on the log
        cut = time.monotonic()
        await asyncio.to_thread(
            rabbitmqctl, "close_all_connections", "--vhost", vhost_of(settings), "test: cut"
        )

        async def started() -> bool:
            events = await log_events(settings, execution_id)
            return any(e.type == "attempt_started.v2" for e in events)

        try:
            await eventually(started, timeout=30, every=0.2)
        finally:
            release.set()
        delay = time.monotonic() - cut
    print(f"\nthe work started {delay:.1f} s after the cut")
    assert delay < 20
