"""Triggers from other services: plain AMQP + JSON, no Ricochet code on the sending side."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import orjson
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ricochet.contracts import MAX_TRIGGER_BYTES, REASON_HEADER, ExecutionRequested
from ricochet.workers.client.client import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import dead_letters, eventually, log_events, running_worker


async def publish_trigger(
    settings: Settings, body: bytes, routing_key: str, content_type: str = "application/json"
) -> None:
    """What a service in any language does: publish JSON to <ns>.triggers, key = target."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.triggers")
        message = aio_pika.Message(
            body, content_type=content_type, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await exchange.publish(message, routing_key=routing_key)
    finally:
        await connection.close()


async def test_a_raw_amqp_trigger_starts_an_execution(settings: Settings, client: Client) -> None:
    """A JSON trigger published with plain aio-pika runs the target and records it."""
    key = f"order-{uuid.uuid4().hex}"
    handle = client.follow(execution_id_for(key))
    body = orjson.dumps({"target": "t.ok", "args": [4], "idempotency_key": key})
    async with running_worker(settings, tasks.ALL):
        await publish_trigger(settings, body, "t.ok")
        assert {"doubled": 8} == await handle.result(timeout=30)
    (requested,) = [e for e in await log_events(settings, handle.id) if e.attempt == 0][:1]
    assert isinstance(requested, ExecutionRequested)
    assert ("trigger", key) == (requested.source, requested.idempotency_key)


async def test_the_same_idempotency_key_five_times_at_once_starts_one(
    settings: Settings, client: Client
) -> None:
    """Five concurrent copies with one key: exactly one execution, one body run."""
    key = f"pay-{uuid.uuid4().hex}"
    body = orjson.dumps({"target": "t.ok", "kwargs": {"x": 1}, "idempotency_key": key})
    handle = client.follow(execution_id_for(key))
    async with running_worker(settings, tasks.ALL):
        await asyncio.gather(*(publish_trigger(settings, body, "t.ok") for _ in range(5)))
        await handle.wait(timeout=30)
        await asyncio.sleep(1.0)
    events = await log_events(settings)
    requested = [e for e in events if isinstance(e, ExecutionRequested)]
    assert 1 == len({e.execution_id for e in requested})
    assert 1 == sum(e.type == "attempt_started.v2" for e in events)


async def test_invalid_triggers_are_dead_lettered_with_a_reason(
    settings: Settings, client: Client
) -> None:
    """Bad JSON, wrong schema, wrong routing key, oversized, unknown target: each parked."""
    cases = [
        (b"{not json", "t.ok", "not JSON"),
        (orjson.dumps({"target": "t.ok", "args": "x"}), "t.ok", "does not match trigger.v1"),
        (orjson.dumps({"target": "t.ok", "surprise": 1}), "t.ok", "does not match trigger.v1"),
        (orjson.dumps({"target": "t.ok"}), "t.other", "is not the target"),
        (b" " * (MAX_TRIGGER_BYTES + 1), "t.ok", "over the"),
        (orjson.dumps({"target": "no.such"}), "no.such", "unknown target"),
    ]
    async with running_worker(settings, tasks.ALL):
        for body, routing_key, _ in cases:
            await publish_trigger(settings, body, routing_key)
        dead = await dead_letters(settings, expected=len(cases), timeout=30)
        handle = client.follow(execution_id_for("after-the-bad-ones"))
        good = orjson.dumps({"target": "t.ok", "idempotency_key": "after-the-bad-ones"})
        await publish_trigger(settings, good, "t.ok")
        assert {"doubled": 2} == await handle.result(timeout=30)
    reasons = [str((m.headers or {}).get(REASON_HEADER)) for m in dead]
    for _, _, expected in cases:
        assert any(expected in reason for reason in reasons), (expected, reasons)


def _unique_key(trigger: dict[str, Any]) -> dict[str, Any]:
    """A fresh idempotency key when asked: hypothesis repeats values, and a repeated key is
    (rightly) matched to the first execution instead of starting one."""
    if trigger.pop("with_key", False):
        trigger["idempotency_key"] = uuid.uuid4().hex
    return trigger


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"target": st.sampled_from(["t.ok", "t.async_ok", "nope"])},
        optional={"args": st.just([1]), "kwargs": JSON, "with_key": st.just(True)},
    )
    .map(_unique_key)
    .map(lambda value: json.dumps(value).encode()),
)
"""Written with the json module, which (unlike orjson) also writes integers beyond 64 bits
and Infinity, as other languages' encoders may."""


async def test_fuzzed_triggers_are_each_executed_or_dead_lettered(
    settings: Settings, client: Client
) -> None:
    """Whatever arrives, every trigger ends as an execution or a dead letter; none is lost."""
    bodies: list[bytes] = []

    @hypothesis_settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(BODIES)
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    async with running_worker(settings, tasks.ALL):
        for body in bodies:
            await publish_trigger(settings, body, _routing_key(body))

        async def accounted() -> bool:
            started = await _started(settings)
            dead = await _dead_count(settings)
            return started + dead >= len(bodies)

        try:
            await eventually(accounted, timeout=60, every=0.5)
        except AssertionError:
            started, dead = await _started(settings), await _dead_count(settings)
            raise AssertionError(
                f"{len(bodies)} triggers, {started} started, {dead} dead"
            ) from None
        assert (await _started(settings)) + (await _dead_count(settings)) == len(bodies)


def _routing_key(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "garbage"
    target = parsed.get("target") if isinstance(parsed, dict) else None
    return target if isinstance(target, str) else "garbage"


async def _started(settings: Settings) -> int:
    """Trigger-started executions whose first attempt ran."""
    events = await log_events(settings)
    from_triggers = {
        e.execution_id
        for e in events
        if isinstance(e, ExecutionRequested) and e.source == "trigger"
    }
    return len({e.execution_id for e in events if e.type == "attempt_started.v2"} & from_triggers)


async def _dead_count(settings: Settings) -> int:
    """Messages parked in the dead-letter queue (nobody consumes it but people)."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{settings.namespace}.dead", passive=True)
        count = queue.declaration_result.message_count
        return int(count or 0)
    finally:
        await connection.close()


async def test_an_idempotency_key_is_remembered_across_an_engine_restart(
    settings: Settings, client: Client
) -> None:
    """The key's first execution is found again by a new intake that replayed the log."""
    key = f"restart-{uuid.uuid4().hex}"
    body = orjson.dumps({"target": "t.ok", "idempotency_key": key})
    handle = client.follow(execution_id_for(key))
    async with running_worker(settings, tasks.ALL):
        await publish_trigger(settings, body, "t.ok")
        await handle.wait(timeout=30)
    async with running_worker(settings, tasks.ALL) as worker:
        await publish_trigger(settings, body, "t.ok")
        assert worker.supervisor is not None
        intake = worker.supervisor.intake
        await eventually(lambda: intake.knows(key), timeout=30)
        await asyncio.sleep(1.5)
    events = await log_events(settings)
    assert 1 == sum(isinstance(e, ExecutionRequested) for e in events)
    assert 1 == sum(e.type == "attempt_started.v2" for e in events)


async def test_submits_with_one_key_share_one_execution(settings: Settings, client: Client) -> None:
    """``submit(idempotency_key=...)`` goes through the intake: three submits, one execution."""
    key = f"submit-{uuid.uuid4().hex}"
    async with running_worker(settings, tasks.ALL):
        handles = await asyncio.gather(
            *(client.submit("t.ok", [3], idempotency_key=key) for _ in range(3))
        )
        assert {execution_id_for(key)} == {h.id for h in handles}
        assert {"doubled": 6} == await handles[0].result(timeout=30)
        await asyncio.sleep(1.0)
    events = await log_events(settings)
    assert 1 == sum(e.type == "attempt_started.v2" for e in events)
