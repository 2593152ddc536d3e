"""Cancel, with real workers (issue 11 item 5): ``Client.cancel`` and ``ricochet cancel``.

A cancel claims the next attempt on the log as a start would; a worker that gets a
copy of that attempt's message (the retry still in its delay queue, the first
attempt still queued) finds it claimed and drops it. An attempt already running
finishes, and nothing runs after it. Waiters get ``Cancelled``.

How "it never ran" is seen without sleeping: the message must leave its queues (it
reached a worker), the worker is then stopped gracefully (every handler finishes),
and the work queue is still empty (the message was acked, not given back). Only
then are the body runs and the log read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from ricochet import Task, current_attempt, task
from ricochet.engine import Status
from ricochet.errors import Cancelled, CannotCancel, UnknownExecution
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, eventually, log_events, running_worker, types_of
from tests.integration.test_cli import ricochet

RUNS: Counter[tuple[str, int]] = Counter()
"""(execution id, attempt) -> how many times a body of this module ran."""
ENTERED: dict[str, asyncio.Event] = {}
RELEASE: dict[str, asyncio.Event] = {}
RETRY_DELAY_S = 6.0
"""Long enough for a cancel to land while the retry waits (a cancel reads the log twice)."""


class Boom(RuntimeError):
    pass


def _ran() -> tuple[str, int]:
    context = current_attempt()
    assert context is not None
    key = (context.execution_id, context.attempt)
    RUNS[key] += 1
    return key


@task(retries=(2, RETRY_DELAY_S), name="cx.fails_first")
def fails_first() -> str:
    _, attempt = _ran()
    if attempt == 1:
        raise Boom("the first attempt fails; the retry waits in its delay queue")
    return "retried"


@task(retries=(2, 0.2), name="cx.gated")
async def gated(outcome: str) -> str:
    """Runs until the test lets it go, then fails or returns as told."""
    execution_id, _ = _ran()
    ENTERED.setdefault(execution_id, asyncio.Event()).set()
    await RELEASE.setdefault(execution_id, asyncio.Event()).wait()
    if outcome == "fail":
        raise Boom("failed after the cancel")
    return "finished anyway"


@task(retries=3, name="cx.queued")
def queued() -> str:
    _ran()
    return "should not run"


TASKS: list[Task[..., Any]] = [fails_first, gated, queued]


async def ready_in(settings: Settings, queue: str) -> int:
    """Messages ready in ``queue`` (delivered-but-unacked ones are not counted)."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count
    finally:
        await connection.close()


async def test_a_cancelled_retry_never_runs_and_its_waiter_gets_cancelled(
    settings: Settings, client: Client
) -> None:
    """Given attempt 1 failed and the retry waits 6 s in its delay queue, when the
    execution is cancelled, then the waiter gets ``Cancelled`` at once, and the retry's
    message, once due, reaches the worker and is dropped: the body ran once."""
    names = Names(settings.namespace)
    work = names.work_queue("default")
    delay = names.delay_queue(round(RETRY_DELAY_S * 1000))
    async with running_worker(settings, TASKS):
        handle = await client.submit("cx.fails_first")
        await eventually(lambda: (s := client.state(handle.id)) and s.next_due_at, timeout=30)

        state = await client.cancel(handle.id, "not needed any more")

        assert (Status.CANCELLED, 2) == (state.status, state.cancel_from)
        with pytest.raises(Cancelled, match="cancelled before attempt 2: not needed any more"):
            await handle.result(timeout=5)
        await eventually(
            lambda: all_drained(settings, delay, work), timeout=RETRY_DELAY_S + 30, every=0.25
        )
    assert 0 == await ready_in(settings, work), "the retry was acked, not given back"
    assert {(handle.id, 1): 1} == {k: v for k, v in RUNS.items() if k[0] == handle.id}
    events = await log_events(settings, handle.id)
    assert types_of(events)[-1] == "execution_cancelled.v1"
    assert "attempt_started.v2" not in types_of(events)[2:]


async def all_drained(settings: Settings, *queues: str) -> bool:
    return all([await ready_in(settings, queue) == 0 for queue in queues])


async def test_cancelling_a_pending_execution_before_any_worker_serves_it(
    settings: Settings, client: Client
) -> None:
    """Given a request queued while no worker runs, when it is cancelled, then a worker
    started later (whose claim book never saw the cancel: it asks the log) drops it."""
    await bind_target(settings, "cx.queued")
    handle = await client.submit("cx.queued")

    state = await client.cancel(handle.id)

    assert (Status.CANCELLED, 1) == (state.status, state.cancel_from)
    with pytest.raises(Cancelled, match="cancelled before it started"):
        await handle.result(timeout=5)
    work = Names(settings.namespace).work_queue("default")
    assert 1 == await ready_in(settings, work)
    async with running_worker(settings, TASKS):
        await eventually(lambda: all_drained(settings, work), timeout=30)
    assert 0 == await ready_in(settings, work)
    assert 0 == sum(v for k, v in RUNS.items() if k[0] == handle.id)
    assert ["execution_requested.v2", "execution_cancelled.v1"] == types_of(
        await log_events(settings, handle.id)
    )


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings, TASKS) as running:
        yield running


async def cancel_while_running(client: Client, worker: Worker, outcome: str) -> str:
    """Start ``cx.gated``, cancel it while attempt 1 runs, then let attempt 1 end."""
    handle = await client.submit("cx.gated", [outcome])
    await eventually(lambda: handle.id in ENTERED, timeout=30)
    await ENTERED[handle.id].wait()

    state = await client.cancel(handle.id)

    assert (Status.RUNNING, 2) == (state.status, state.cancel_from)
    claims = worker._claims
    assert claims is not None
    await eventually(lambda: claims.claimed(handle.id, 2))  # the worker's book read the cancel
    RELEASE[handle.id].set()
    return handle.id


async def test_cancel_during_a_running_attempt_lets_it_finish_and_runs_nothing_after(
    settings: Settings, client: Client, worker: Worker
) -> None:
    """Given attempt 1 running (2 retries left), when it is cancelled and then fails,
    then no retry is recorded or published, and the execution ends cancelled."""
    execution_id = await cancel_while_running(client, worker, "fail")

    with pytest.raises(Cancelled, match="while attempt 1 ran; that attempt failed"):
        await client.follow(execution_id).result(timeout=30)
    events = await log_events(settings, execution_id)
    assert [
        "execution_requested.v2",
        "attempt_started.v2",
        "cancel_requested.v1",
        "attempt_failed.v1",
    ] == types_of(events)
    assert {(execution_id, 1): 1} == {k: v for k, v in RUNS.items() if k[0] == execution_id}


async def test_an_attempt_that_succeeds_after_a_cancel_keeps_its_result(
    settings: Settings, client: Client, worker: Worker
) -> None:
    """The cancel came too late to matter: the result is kept (and documented so)."""
    execution_id = await cancel_while_running(client, worker, "succeed")

    assert "finished anyway" == await client.follow(execution_id).result(timeout=30)


async def test_cancelling_an_ended_or_unknown_execution_is_refused(
    settings: Settings, client: Client, worker: Worker
) -> None:
    handle = await client.submit("cx.gated", ["succeed"])
    await eventually(lambda: handle.id in ENTERED, timeout=30)
    RELEASE.setdefault(handle.id, asyncio.Event()).set()
    await handle.result(timeout=30)

    with pytest.raises(CannotCancel, match=r"has already ended \(succeeded\): nothing to cancel"):
        await handle.cancel()
    with pytest.raises(UnknownExecution, match=r"no execution 0+ in the log"):
        await client.cancel("0" * 32)


async def test_the_cli_cancels_and_says_so_with_its_exit_code(
    settings: Settings, client: Client
) -> None:
    """``ricochet cancel``: 0 once cancelled, 1 when already ended, 2 when unknown."""
    await bind_target(settings, "cx.queued")
    handle = await client.submit("cx.queued")

    first = await ricochet(settings, "cancel", handle.id, "--reason", "duplicate order")
    again = await ricochet(settings, "cancel", handle.id)
    unknown = await ricochet(settings, "cancel", uuid.uuid4().hex)
    too_long = await ricochet(settings, "cancel", handle.id, "--reason", "x" * 1001)

    assert (0, f"cancelled {handle.id}: attempt 1 will not run\n") == first[:2]
    assert 1 == again[0]
    assert f"execution {handle.id} has already ended (cancelled): nothing to cancel" in again[2]
    assert 2 == unknown[0]
    assert "no execution" in unknown[2]
    assert 2 == too_long[0]
    assert "at most 1000 characters" in too_long[2]
    with pytest.raises(Cancelled, match="duplicate order"):
        await handle.result(timeout=5)
    shown = await ricochet(settings, "status", handle.id, "--api", "")
    assert 1 == shown[0], "a cancelled execution did not succeed: status says so by its exit code"
    assert "cancelled" in shown[1]
