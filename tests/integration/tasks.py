"""Tasks the integration tests run. Behaviour keyed on the attempt number, not on state."""

from __future__ import annotations

import asyncio
from typing import Any

from workers import Task, current_attempt, task


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


ALL: list[Task[..., Any]] = [
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
