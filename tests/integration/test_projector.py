"""The projector's live state equals a fresh fold of the log (SPEC 7.5)."""

from __future__ import annotations

import asyncio

from ricochet.engine import Projection, project
from ricochet.workers.client.client import Client
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import eventually, log_events, running_worker


async def test_live_projection_equals_a_fresh_fold(settings: Settings, client: Client) -> None:
    """Given executions that succeed, retry and fail, the live state equals a refold."""
    projector = Projector(settings)
    await projector.start()
    try:
        async with running_worker(settings, tasks.ALL):
            targets = ["t.ok", "t.twice_then_ok", "t.always_fails", "t.backoff"] * 3
            handles = await asyncio.gather(*(client.submit(t) for t in targets))
            await asyncio.gather(*(h.wait(timeout=30) for h in handles))

        def all_ended() -> bool:
            states = [projector.projection.get(h.id) for h in handles]
            return all(s is not None and s.is_terminal for s in states)

        await eventually(all_ended)
        live = dict(projector.projection.executions)
    finally:
        await projector.stop()

    events = await log_events(settings)
    assert project(events).executions == live
    doubled = Projection()
    for event in events:
        doubled.apply(event)
        doubled.apply(event)
    assert doubled.executions == live
    assert project(events + events).executions == live
