"""The projector's memory does not follow the size of the payloads it folds.

On main it kept every state in a dict and grew from 58 to 328 MiB over 7,478
executions whose arguments reached 1 MiB. States now live in its store; what
it keeps in memory is a bounded cache.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from ricochet.engine import project
from ricochet.workers.client.client import Client
from ricochet.workers.log.history import read_entries
from ricochet.workers.read import projector as projector_module
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, eventually, log_events

EXECUTIONS = 60
ARG_BYTES = 512 * 1024
CACHE_BYTES = 2 * 1024 * 1024
MIB = 1024 * 1024


async def test_memory_stays_bounded_while_payloads_pile_up(
    settings: Settings, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 60 pending executions with 512 KiB of arguments each (30 MiB, all live),
    when a projector with a 2 MiB cache folds them,
    then it holds a few MiB whatever the total, and still equals a fresh fold."""
    monkeypatch.setattr(projector_module, "CACHE_BYTES", CACHE_BYTES)
    await bind_target(settings, "t.ok")
    for number in range(EXECUTIONS):
        await client.submit("t.ok", [f"{number:08d}" + "x" * ARG_BYTES])
    tail = (await read_entries(settings))[-1].offset
    gc.collect()
    tracemalloc.start()
    try:
        projector = Projector(settings)
        await projector.start()
        try:
            await eventually(lambda: projector.offset == tail, timeout=60)
            projector.flush()
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
            progress = projector.progress()
            stored = projector.store.count()
        finally:
            tracemalloc.stop()
        total = EXECUTIONS * ARG_BYTES
        assert EXECUTIONS == stored
        assert progress["cached_bytes"] is not None
        assert progress["cached_bytes"] <= CACHE_BYTES
        assert held < 8 * MIB < total, f"held {held / MIB:.1f} MiB of {total / MIB:.0f} MiB"
        assert project(await log_events(settings)).executions == dict(
            projector.projection.executions
        )
    finally:
        await projector.stop()
