"""Many worker processes on the same queues: work spreads, nothing runs twice."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import aio_pika

from ricochet.contracts import REASON_HEADER, FailureCause
from ricochet.engine import Status
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, dead_letters
from tests.integration.processes import fleet


async def test_three_workers_share_300_executions_and_run_each_once(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """retries=0 x 300 on three processes: each body ran exactly once; every worker ran some."""
    async with fleet(settings, tmp_path) as workers:
        for _ in range(3):
            await workers.start("--concurrency", "4")
        handles = await asyncio.gather(*(client.submit("p.quick", [i]) for i in range(300)))
        states = await asyncio.gather(*(h.wait(timeout=120) for h in handles))

    assert all(Status.SUCCEEDED == s.status for s in states)
    runs = {h.id: workers.runs(h.id) for h in handles}
    assert all(1 == len(lines) for lines in runs.values())
    per_pid = collections.Counter(lines[0].split()[1] for lines in runs.values())
    assert {str(w.pid) for w in workers.workers} == set(per_pid)
    assert 300 == sum(per_pid.values())


async def test_queues_flag_chooses_what_a_worker_consumes(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """A worker started with --queues other consumes nothing from the default queue."""
    async with fleet(settings, tmp_path) as workers:
        await workers.start("--queues", "other")
        await workers.start()
        handles = await asyncio.gather(*(client.submit("p.quick", [i]) for i in range(20)))
        await asyncio.gather(*(h.wait(timeout=60) for h in handles))
    only = workers.workers[1].pid
    assert all(workers.runs(h.id)[0].split()[1] == str(only) for h in handles)


async def test_poison_that_kills_every_worker_is_parked_and_failed(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """A body that kills its worker on every attempt: failed after 1 + retries, parked, and
    other work goes on (work that shared a dying worker is lost with it, at most once)."""
    async with fleet(settings, tmp_path) as workers:
        for _ in range(4):
            await workers.start()
        poison = await client.submit("p.suicide")
        during = await asyncio.gather(*(client.submit("p.quick", [i]) for i in range(20)))
        states = await asyncio.gather(*(h.wait(timeout=60) for h in during))
        final = await poison.wait(timeout=90)
        killed = {str(w.pid) for w in workers.workers if w.process.poll() is not None}
        after = await asyncio.gather(*(client.submit("p.quick", [i]) for i in range(20)))
        later = await asyncio.gather(*(h.wait(timeout=60) for h in after))

    for state in states:
        if state.status is not Status.SUCCEEDED:
            assert FailureCause.WORKER_LOST == state.cause
            assert (state.attempts[-1].worker or "").rsplit(":", 1)[1] in killed
    assert all(Status.SUCCEEDED == s.status for s in later)
    assert Status.FAILED == final.status
    assert FailureCause.WORKER_LOST == final.cause
    assert 3 == len(final.attempts) == len(workers.runs(poison.id))
    (parked,) = await dead_letters(settings, expected=1)
    assert "poison" in str((parked.headers or {})[REASON_HEADER])
    assert poison.id.encode() in parked.body


async def test_work_dead_lettered_by_the_broker_ends_its_execution(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """A message the broker dead-letters (delivery limit) ends its execution as failed."""
    names = Names(settings.namespace)
    async with fleet(settings, tmp_path) as workers:
        await workers.start("--queues", "elsewhere")
        await bind_target(settings, "p.quick")
        connection = await aio_pika.connect(settings.amqp_url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(names.work_queue("default"))
            handle = await client.submit("p.quick", [1])
            for _ in range(settings.delivery_limit + 1):
                message = await queue.get(timeout=10)
                await message.nack(requeue=True)
        finally:
            await connection.close()
        final = await handle.wait(timeout=30)

    assert Status.FAILED == final.status
    assert FailureCause.REJECTED == final.cause
    assert final.error is not None
    assert "delivery_limit" in final.error.message
    assert not workers.runs(handle.id)
