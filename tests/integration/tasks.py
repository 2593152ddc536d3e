"""Tasks the integration tests run. Behaviour keyed on the attempt number, not on state."""

from __future__ import annotations

import asyncio
from typing import Any

from ricochet import Task, current_attempt, task, workflow


class Boom(RuntimeError):
    """The error the failing tasks raise."""


def _attempt() -> int:
    context = current_attempt()
    assert context is not None, "runs only inside a worker"
    return context.attempt


@task(name="t.ok")
def ok(x: int = 1) -> dict[str, int]:
    return {"doubled": x * 2}


@task(name="t.async_ok")
async def async_ok(x: int = 1) -> int:
    await asyncio.sleep(0)
    return x + 1


@task(retries=2, name="t.twice_then_ok")
def twice_then_ok() -> str:
    if _attempt() <= 2:
        raise Boom(f"attempt {_attempt()} fails")
    return "third time lucky"


@task(retries=2, name="t.always_fails")
def always_fails() -> None:
    raise Boom(f"still broken on attempt {_attempt()}")


@task(name="t.fails_once_no_retry")
def fails_no_retry() -> None:
    raise Boom("no second chance")


@task(retries=(2, 0.5, 1.0), name="t.backoff")
def backoff() -> str:
    if _attempt() <= 2:
        raise Boom("not yet")
    return "done"


@task(retries=(1, 5.0), name="t.slow_retry")
def slow_retry() -> str:
    if _attempt() == 1:
        raise Boom("retry me in 5 s")
    return "slow done"


@task(retries=(1, 0.3), name="t.fast_retry")
def fast_retry() -> str:
    if _attempt() == 1:
        raise Boom("retry me in 0.3 s")
    return "fast done"


@task(name="t.not_json")
def not_json() -> object:
    return {1, 2, 3}


@task(retries=(2, 0.3, 0.6), name="t.child_flaky")
def child_flaky(x: int) -> int:
    if _attempt() <= 2:
        raise Boom(f"child attempt {_attempt()} fails")
    return x * 10


@task(retries=(1, 0.2), name="t.child_broken")
def child_broken() -> None:
    raise Boom("the child is broken for good")


@task(name="t.child_add")
def child_add(a: int, b: int) -> int:
    return a + b


@task(retries=(1, 3.0), name="t.child_slow_retry")
async def child_slow_retry(x: int) -> int:
    if _attempt() == 1:
        raise Boom("retry me in 3 s")
    return x


@workflow(name="w.calls_flaky")
def calls_flaky(x: int) -> int:
    return child_flaky(x) + 1


@workflow(name="w.calls_broken")
async def calls_broken() -> None:
    await child_broken()  # type: ignore[misc]


@workflow(retries=1, name="w.fails_after_children")
def fails_after_children() -> int:
    total = child_add(1, 2) + child_add(3, 4)
    if _attempt() == 1:
        raise Boom("the parent fails after its children")
    return total


@workflow(name="w.waits_sync")
def waits_sync(x: int) -> int:
    return child_slow_retry(x)  # type: ignore[return-value]


@workflow(name="w.waits_async")
async def waits_async(x: int) -> int:
    handle = await child_slow_retry.submit(x)
    result = await handle.result()
    assert isinstance(result, int)
    return result


@workflow(retries=2, name="w.always_fails")
def workflow_always_fails() -> None:
    raise Boom(f"workflow attempt {_attempt()} fails")


ALL: list[Task[..., Any]] = [
    child_flaky,
    child_broken,
    child_add,
    child_slow_retry,
    calls_flaky,
    calls_broken,
    fails_after_children,
    waits_sync,
    waits_async,
    workflow_always_fails,
    ok,
    async_ok,
    twice_then_ok,
    always_fails,
    fails_no_retry,
    backoff,
    slow_retry,
    fast_retry,
    not_json,
]


@task(name="t.needs_fix")
def needs_fix(flag_file: str) -> str:
    """Fails until the file exists: a bug 'fixed' between a run and its rerun."""
    from pathlib import Path

    if not Path(flag_file).exists():
        raise Boom(f"{flag_file} is missing")
    return "fixed"


ALL.append(needs_fix)


_BARRIERS: dict[str, asyncio.Barrier] = {}


@task(retries=(1, 0.2), name="t.result_together")
async def result_together(group: str, size: int, kind: str) -> Any:
    """Attempt 1 returns in the same turn of the loop as ``size`` others of ``group`` (so
    their events share a group-commit message); ``kind`` says what it returns."""
    if _attempt() == 1:
        await _BARRIERS.setdefault(group, asyncio.Barrier(size)).wait()
    if kind == "deep":  # written by orjson, past what pydantic reads in a stream message
        value: Any = 1
        for _ in range(199):
            value = [value]
        return value
    if kind == "huge":
        return "x" * (4 * 1024 * 1024 + 1)
    return kind


ALL.append(result_together)

RUNS: dict[tuple[str, int], int] = {}
"""(execution id, attempt) -> how many times a counted body ran in this process."""


@task(retries=2, name="t.counted")
async def counted() -> str:
    """Counts its runs, and takes a moment, so copies of its message overlap."""
    context = current_attempt()
    assert context is not None
    key = (context.execution_id, context.attempt)
    RUNS[key] = RUNS.get(key, 0) + 1
    await asyncio.sleep(0.2)
    return "counted"


ALL.append(counted)


@task(name="t.counted_once")
async def counted_once() -> str:
    """``t.counted`` at most once (``retries=0``): what copies of old work must never rerun."""
    context = current_attempt()
    assert context is not None
    key = (context.execution_id, context.attempt)
    RUNS[key] = RUNS.get(key, 0) + 1
    return "once"


ALL.append(counted_once)
