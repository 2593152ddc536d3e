"""Which failures are retried, with real workers (SPEC section 2, issue 11 item 5).

``dont_retry``/``retry_on`` end an execution at the first failure they rule out,
recorded with cause ``not_retryable``; arguments that do not fit the target's
signature end it at once (cause ``rejected``), whether a client or a trigger sent
them, however many retries the task has; a ``TypeError`` raised inside the body is
still an ordinary failure.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import aio_pika
import orjson
import pytest

from ricochet import Task, current_attempt, task
from ricochet.contracts import AttemptFailed, ExecutionFailed, FailureCause
from ricochet.engine import Status
from ricochet.errors import RemoteError
from ricochet.workers.client.client import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.settings import Settings
from tests.integration.harness import log_events, running_worker, types_of

RUNS: Counter[str] = Counter()
"""Execution id -> how many times a body of this module ran for it."""


class Permanent(ValueError):
    """No retry can fix it."""


class Transient(ConnectionError):
    """A retry may fix it."""


def _ran() -> int:
    context = current_attempt()
    assert context is not None
    RUNS[context.execution_id] += 1
    return context.attempt


@task(retries=5, dont_retry=(Permanent,), name="rc.dont_retry")
def dont_retry(kind: str) -> str:
    """Raises ``kind`` on attempt 1; a transient failure is then retried and succeeds."""
    if _ran() == 1:
        raise Permanent("the invoice number is malformed") if kind == "permanent" else Transient()
    return "retried"


@task(retries=(3, 0.1), retry_on=(Transient,), name="rc.retry_on")
def retry_on(kind: str) -> str:
    if _ran() == 1:
        raise Transient("the mail server is busy") if kind == "transient" else KeyError(kind)
    return "retried"


@task(retries=5, name="rc.strict")
def strict(order: int, currency: str = "EUR") -> str:
    _ran()
    return f"{order} {currency}"


@task(retries=5, name="rc.type_error_inside")
def type_error_inside() -> str:
    if _ran() == 1:
        raise TypeError("a bug in the body, not in the call")
    return "second time"


TASKS: list[Task[..., Any]] = [dont_retry, retry_on, strict, type_error_inside]


async def ended_after_one_attempt(settings: Settings, execution_id: str) -> AttemptFailed:
    """The log says: requested, started once, failed, ended failed; the failure is returned."""
    events = await log_events(settings, execution_id)
    assert [
        "execution_requested.v2",
        "attempt_started.v2",
        "attempt_failed.v1",
        "execution_failed.v1",
    ] == types_of(events)
    failure, ended = events[2], events[3]
    assert isinstance(failure, AttemptFailed)
    assert isinstance(ended, ExecutionFailed)
    assert (failure.cause, failure.error) == (ended.cause, ended.error)
    return failure


async def test_dont_retry_ends_the_execution_after_one_attempt(
    settings: Settings, client: Client
) -> None:
    """Given ``retries=5, dont_retry=(Permanent,)``, when attempt 1 raises ``Permanent``, then
    the execution fails at once with cause ``not_retryable``, and a waiter gets the error."""
    async with running_worker(settings, TASKS):
        handle = await client.submit("rc.dont_retry", ["permanent"])
        with pytest.raises(RemoteError) as raised:
            await handle.result(timeout=30)
    failure = await ended_after_one_attempt(settings, handle.id)
    assert FailureCause.NOT_RETRYABLE == failure.cause
    assert f"{__name__}.Permanent" == failure.error.type == raised.value.remote_type
    assert 1 == RUNS[handle.id]


async def test_dont_retry_still_retries_what_it_does_not_name(
    settings: Settings, client: Client
) -> None:
    async with running_worker(settings, TASKS):
        handle = await client.submit("rc.dont_retry", ["transient"])
        assert "retried" == await handle.result(timeout=30)
    assert 2 == RUNS[handle.id]


async def test_retry_on_retries_only_the_listed_type(settings: Settings, client: Client) -> None:
    """Given ``retry_on=(Transient,)``: a ``Transient`` is retried, a ``KeyError`` is not."""
    async with running_worker(settings, TASKS):
        retried = await client.submit("rc.retry_on", ["transient"])
        other = await client.submit("rc.retry_on", ["other"])
        assert "retried" == await retried.result(timeout=30)
        state = await other.wait(timeout=30)
    assert (Status.FAILED, FailureCause.NOT_RETRYABLE) == (state.status, state.cause)
    assert (2, 1) == (RUNS[retried.id], RUNS[other.id])
    failure = await ended_after_one_attempt(settings, other.id)
    assert "KeyError" == failure.error.type


def assert_bad_arguments(failure: AttemptFailed, problem: str) -> None:
    assert FailureCause.REJECTED == failure.cause
    assert "BadArguments" == failure.error.type
    assert failure.error.message.startswith(
        "rc.strict(order, currency='EUR') cannot take these arguments: "
    )
    assert failure.error.message.endswith(problem)


async def test_a_submit_whose_arguments_do_not_fit_fails_at_once_with_retries_left(
    settings: Settings, client: Client
) -> None:
    """Given ``retries=5``, when a client submits arguments the signature refuses, then
    the body never runs and the execution fails after one attempt, saying why."""
    async with running_worker(settings, TASKS):
        handle = await client.submit("rc.strict", [42], {"colour": "red"})
        with pytest.raises(RemoteError) as raised:
            await handle.result(timeout=30)
    assert "BadArguments" == raised.value.remote_type
    failure = await ended_after_one_attempt(settings, handle.id)
    assert_bad_arguments(failure, "got an unexpected keyword argument 'colour'")
    assert 0 == RUNS[handle.id]


async def publish_trigger(settings: Settings, trigger: dict[str, Any]) -> None:
    """What another service does: plain AMQP and JSON to ``<ns>.triggers``."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.triggers")
        message = aio_pika.Message(
            orjson.dumps(trigger),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key=trigger["target"])
    finally:
        await connection.close()


async def test_a_trigger_whose_arguments_do_not_fit_fails_at_once_with_retries_left(
    settings: Settings, client: Client
) -> None:
    """The same check for a trigger from another service: it is made by the worker, so
    every way in is covered."""
    key = f"order-{uuid.uuid4().hex}"
    handle = client.follow(execution_id_for(key))
    async with running_worker(settings, TASKS):
        await publish_trigger(settings, {"target": "rc.strict", "idempotency_key": key})
        state = await handle.wait(timeout=30)
    assert (Status.FAILED, FailureCause.REJECTED) == (state.status, state.cause)
    failure = await ended_after_one_attempt(settings, handle.id)
    assert_bad_arguments(failure, "missing a required argument: 'order'")
    assert 0 == RUNS[handle.id]


async def test_a_type_error_inside_the_body_is_an_ordinary_failure(
    settings: Settings, client: Client
) -> None:
    async with running_worker(settings, TASKS):
        handle = await client.submit("rc.type_error_inside")
        assert "second time" == await handle.result(timeout=30)
    failed = [e for e in await log_events(settings, handle.id) if isinstance(e, AttemptFailed)]
    assert [(FailureCause.EXCEPTION, "TypeError")] == [(e.cause, e.error.type) for e in failed]
