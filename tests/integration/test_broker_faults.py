"""Connections cut and the broker restarted mid-run: nothing lost, nothing twice (SPEC 7)."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

from ricochet.contracts import TERMINAL_TYPES, Event
from ricochet.engine import Status, project
from ricochet.workers.client.client import Client
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, eventually, log_events
from tests.integration.processes import Fleet, fleet, rabbitmqctl, vhost_of

EXECUTIONS = 200


def terminal_ids(events: list[Event]) -> dict[str, set[str]]:
    """Execution -> the distinct ids of its terminal events (a duplicate copy has the same id)."""
    ended: dict[str, set[str]] = collections.defaultdict(set)
    for event in events:
        if event.type in TERMINAL_TYPES:
            ended[event.execution_id].add(event.event_id)
    return ended


async def run_through(
    settings: Settings, client: Client, workers: Fleet, fault: str
) -> tuple[list[str], Projector]:
    """200 quick executions on two workers, with ``fault`` injected while they run."""
    projector = Projector(settings)
    await projector.start()
    await bind_target(settings, "p.slow_quick")
    handles = await asyncio.gather(*(client.submit("p.slow_quick", [i]) for i in range(EXECUTIONS)))
    await workers.start()
    await workers.start()

    def ended() -> int:
        return sum(1 for h in handles if (s := client.state(h.id)) is not None and s.is_terminal)

    await eventually(lambda: ended() >= 20, timeout=30, every=0.01)
    assert ended() < EXECUTIONS / 2, "the fault must hit while most executions are still to run"
    if fault == "close_all_connections":
        rabbitmqctl("close_all_connections", "--vhost", vhost_of(settings), "test: cut them all")
    else:
        rabbitmqctl("stop_app")
        await asyncio.sleep(2)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    states = await asyncio.gather(*(h.wait(timeout=120) for h in handles))
    failed = [
        (s.execution_id, s.cause, s.error) for s in states if s.status is not Status.SUCCEEDED
    ]
    assert not failed

    def projected_all() -> bool:
        return all(
            (s := projector.projection.get(h.id)) is not None and s.is_terminal for h in handles
        )

    await eventually(projected_all, timeout=60)
    return [h.id for h in handles], projector


async def check_nothing_lost_or_doubled(
    settings: Settings, ids: list[str], projector: Projector, workers: Fleet
) -> None:
    events = await log_events(settings)
    ended = terminal_ids(events)
    assert all(1 == len(ended[i]) for i in ids), "every execution ends exactly once"
    twice = {i: workers.runs(i) for i in ids if len(workers.runs(i)) != 1}
    assert not twice, f"every body runs exactly once: {twice}"
    fresh = project(events)
    live = projector.projection
    assert {i: fresh.executions[i] for i in ids} == {i: live.executions[i] for i in ids}
    assert fresh.executions == live.executions


async def test_connections_closed_by_the_broker_mid_run(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """close_all_connections during 200 executions: all end once, bodies run once, fold equal."""
    async with fleet(settings, tmp_path) as workers:
        ids, projector = await run_through(settings, client, workers, "close_all_connections")
        try:
            await check_nothing_lost_or_doubled(settings, ids, projector, workers)
        finally:
            await projector.stop()


async def test_broker_application_restarted_mid_run(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """stop_app/start_app during 200 executions: all end once, bodies run once, fold equal."""
    async with fleet(settings, tmp_path) as workers:
        ids, projector = await run_through(settings, client, workers, "restart")
        try:
            await check_nothing_lost_or_doubled(settings, ids, projector, workers)
        finally:
            await projector.stop()
