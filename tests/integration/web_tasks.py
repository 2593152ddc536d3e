"""Tasks the browser tests watch: a live one, and one whose error is hostile HTML."""

from __future__ import annotations

import asyncio
from typing import Any

from ricochet import Task, current_attempt, task


class Boom(RuntimeError):
    """The error these tasks raise."""


XSS = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"


@task(name="web.xss")
def hostile_error() -> None:
    raise Boom(XSS)


@task(retries=(1, 1.0), name="web.slow")
async def slow() -> str:
    """Runs long enough for a page to watch it: fails once after 1.5 s, then succeeds."""
    context = current_attempt()
    assert context is not None
    await asyncio.sleep(1.5)
    if context.attempt == 1:
        raise Boom("first try is slow and fails")
    return "finally"


ALL: list[Task[..., Any]] = [hostile_error, slow]
