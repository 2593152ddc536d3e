"""The fault runs themselves, for the tests (which assert) and the bench (which prints).

``single_broker``: the test broker restarted, or every connection of the run's vhost
cut, while issue 15's load drains on two worker processes. ``cluster``: the same load
on a 3-node cluster, two workers and a projector given all three addresses; the node
they are connected to is stopped and brought back, then the node leading the log,
then the node leading the work queue. Each fault gets a fresh batch of the load, and
its own row of counts.

The log's leader is placed on another node than the one everyone starts on (the
topology is declared from node 2 first, the targets bound from node 1), so the first
fault tests one thing, and the second stops the log's leader while the processes
are on another node: there, under load, RabbitMQ 3.10.8 loses writes it confirmed
(rabbitmq-server#9457). Before workers looked for their own writes on the log
(``workers.log.witness``), a start and a success published in the 0.2 s around the
stop left 3 executions stuck, one falsely lost, and the projector unlike a fresh fold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ricochet.engine import project
from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration import faults
from tests.integration.cluster import LocalCluster
from tests.integration.faults import Batch, Counts, Fault, Load
from tests.integration.harness import bind_target, eventually
from tests.integration.processes import Fleet, fleet, vhost_of

HIT_AFTER = 0.15
"""The fault comes once this share of the batch's bodies ran: most work is still ahead."""
ALL_END_S = 120.0
WORKERS = 2
WORKER_OPTIONS = ("--concurrency", "16")


async def single_broker(
    settings: Settings, client: Client, directory: Path, fault: str, load: Load
) -> tuple[Counts, int]:
    """One fault (``restart`` or ``close_all_connections``) under load; the counts, and
    how many bodies had run when it came."""
    projector = Projector(settings, directory / "projection.sqlite3")
    await projector.start()
    try:
        for target in (faults.ONCE, faults.RETRIED):
            await bind_target(settings, target)
        batch = await faults.submit(client, load)
        async with fleet(settings, directory) as workers:
            for _ in range(WORKERS):
                await workers.start(*WORKER_OPTIONS)
            ran_before = await hit_after(batch, workers.runs)
            if fault == "restart":
                injected = await faults.restart_broker()
            else:
                injected = await faults.close_all_connections(vhost_of(settings))
            counts = await counted(settings, injected, batch, workers)
        matches = await projector_matches(projector, settings, batch.ids)
        return replace(counts, projector_matches=matches), ran_before
    finally:
        await projector.stop()


async def cluster(
    local: LocalCluster, namespace: str, directory: Path, load: Load
) -> tuple[list[Counts], list[str]]:
    """Stop the node everyone is on, bring it back; then stop the node leading the work
    queue, bring it back. The counts of each, and what happened, in words."""
    everyone = Settings(amqp_url=local.url(0, 1, 2), namespace=namespace)
    log_home = Settings(amqp_url=f"amqp://guest:guest@{local.address(2)}/", namespace=namespace)
    binder = Settings(amqp_url=f"amqp://guest:guest@{local.address(1)}/", namespace=namespace)
    projector = Projector(everyone, directory / "projection.sqlite3")
    notes: list[str] = []
    rows: list[tuple[Counts, Batch]] = []
    async with Client(log_home):
        pass  # the topology, declared from node 2: the log's leader is there
    async with Client(everyone) as client:
        await eventually(lambda: local.replicated(namespace), timeout=90, every=0.5)
        for target in (faults.ONCE, faults.RETRIED):
            await bind_target(binder, target)
        await projector.start()
        try:
            async with fleet(everyone, directory) as workers:
                batch = await faults.submit(client, load)
                for _ in range(WORKERS):
                    await workers.start(*WORKER_OPTIONS)
                log_leader = local.leader_of(Names(namespace).events)
                notes.append(f"workers, projector and client on {local.address(0)}")
                notes.append(f"the log led by {local.address(log_leader)}")
                rows.append(await _node_stop(local, 0, "the node all are on", batch, workers))
                log_leader = local.leader_of(Names(namespace).events)
                notes.append(f"the log led by {local.address(log_leader)} after that")
                assert log_leader != 0, f"the log's leader was on the node stopped: {notes}"
                batch = await faults.submit(client, load)
                rows.append(await _node_stop(local, log_leader, "the log leader", batch, workers))
                work = Names(namespace).work_queue("default")
                leader = local.leader_of(work)
                notes.append(f"{work} led by {local.address(leader)} after that")
                batch = await faults.submit(client, load)
                rows.append(
                    await _node_stop(local, leader, "the work queue leader", batch, workers)
                )
            ids = [i for _, done in rows for i in done.ids]
            matches = await projector_matches(projector, everyone, ids)
        finally:
            await projector.stop()
    return [replace(counts, projector_matches=matches) for counts, _ in rows], notes


async def _node_stop(
    local: LocalCluster, index: int, what: str, batch: Batch, workers: Fleet
) -> tuple[Counts, Batch]:
    """Stop node ``index`` once the batch is under way; count once all ended; start the
    node again and wait until every queue has its members back."""
    settings = workers.settings
    await hit_after(batch, workers.runs)
    began = time.time()
    try:
        await asyncio.to_thread(local.stop_app, index)
        injected = Fault(f"stop {what} ({local.address(index)})", began, time.time())
        counts = await counted(settings, injected, batch, workers)
    finally:
        await asyncio.to_thread(local.start_app, index)
    await eventually(lambda: local.replicated(settings.namespace), timeout=120, every=0.5)
    return counts, batch


async def hit_after(batch: Batch, runs: Callable[[str], list[str]]) -> int:
    """Wait until ``HIT_AFTER`` of the batch's bodies ran; how many had."""
    wanted = HIT_AFTER * len(batch.ids)
    await eventually(lambda: faults.bodies_run(batch, runs) >= wanted, timeout=90, every=0.02)
    return faults.bodies_run(batch, runs)


async def counted(settings: Settings, fault: Fault, batch: Batch, workers: Fleet) -> Counts:
    events = await faults.until_ended(settings, batch, ALL_END_S)
    counts = faults.count(fault, batch, events, workers.runs)
    if not counts.failures:
        return counts
    return replace(counts, failures=(*counts.failures, *told_by_workers(workers)))


TOLD_EVENTS = (
    '"attempt.lost"',
    '"worker.cut_off"',
    '"heartbeat.failed"',
    '"supervisor.active"',
    '"supervisor.caught_up"',
    '"supervisor.take_over_failed"',
    '"execution.dead_lettered"',
    '"execution.poison"',
    '"attempt.claim_unseen"',
    '"work.duplicate_stepped_back"',
)
TOLD_LINES = 40


def told_by_workers(workers: Fleet) -> list[str]:
    """The workers' lines about losses, supervision and heartbeats that did not get
    through: with the failed executions' stories, what a false loss needs explaining."""
    told = []
    for worker in workers.workers:
        lines = [line for line in worker.text().splitlines() if any(e in line for e in TOLD_EVENTS)]
        told += [f"worker {worker.pid}: {line[:400]}" for line in lines[:TOLD_LINES]]
    return told


async def projector_matches(projector: Projector, settings: Settings, ids: Sequence[str]) -> bool:
    """The projector (it lived through the faults) folded every execution as a fresh
    fold of the whole log does (SPEC 7.5)."""
    wanted = list(ids)
    states = projector.projection
    try:
        await eventually(
            lambda: all((s := states.get(i)) and s.is_terminal for i in wanted), timeout=60
        )
    except AssertionError:
        return False
    fresh = project(await faults.read_log(settings)).executions
    return all(fresh.get(i) == states.get(i) for i in wanted)
