"""Tasks for tests that run ``ricochet worker`` as real subprocesses and kill them.

Every body appends a line to a marker file named after its execution, so a
test can count how many times each body really ran, across processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from ricochet import current_attempt, task

MARKERS_ENV = "RICOCHET_TEST_MARKERS"


def mark() -> int:
    """Record that this body ran (execution, attempt, pid); returns the attempt number."""
    context = current_attempt()
    assert context is not None
    directory = Path(os.environ[MARKERS_ENV])
    line = f"{context.attempt} {os.getpid()}\n"
    with (directory / context.execution_id).open("a") as marker:
        marker.write(line)
    return context.attempt


@task(retries=1, name="p.sleepy")
def sleepy(seconds: float) -> int:
    """Runs long on attempt 1 (long enough to be killed), quickly on a retry."""
    if mark() == 1:
        time.sleep(seconds)
    return os.getpid()


@task(name="p.sleepy_once")
def sleepy_once(seconds: float) -> int:
    mark()
    time.sleep(seconds)
    return os.getpid()


@task(retries=(1, 0.5), name="p.sleepy_delayed")
def sleepy_delayed(seconds: float) -> int:
    if mark() == 1:
        time.sleep(seconds)
    return os.getpid()


@task(retries=1, timeout=0.5, name="p.slow_async")
async def slow_async(seconds: float) -> str:
    if mark() == 1:
        await asyncio.sleep(seconds)
    return "async in time"


@task(retries=1, timeout=0.5, name="p.slow_sync")
def slow_sync(seconds: float) -> str:
    if mark() == 1:
        time.sleep(seconds)
    return "sync in time"


@task(name="p.quick")
def quick(index: int) -> int:
    mark()
    time.sleep(0.002)
    return index


@task(name="p.slow_quick")
def slow_quick(index: int) -> int:
    mark()
    time.sleep(0.1)
    return index


@task(retries=2, name="p.suicide")
def suicide() -> None:
    """Poison: kills its worker process on every attempt."""
    mark()
    os._exit(17)


@task(retries=(2, 0.5), name="p.fails_first")
def fails_first(index: int) -> int:
    """Fails its first attempt, so a retry waits in a delay queue (0.5 s) through a fault."""
    if mark() == 1:
        raise RuntimeError("the first attempt fails")
    return index
