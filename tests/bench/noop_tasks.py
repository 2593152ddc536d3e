"""Tasks for the core benchmark (``python -m tests.bench.bench_core``).

A worker runs them with ``ricochet worker tests.bench.noop_tasks`` from the repo root.
"""

from __future__ import annotations

import time

from ricochet import current_attempt, task


class FirstAttemptFails(RuntimeError):
    """Raised by ``bench.fail_once`` on its first attempt, to schedule one retry."""


@task(name="bench.noop")
def noop() -> None:
    """Does nothing: what is measured is Ricochet's cost per execution."""


def _fail_on_attempt_1() -> str:
    attempt = current_attempt()
    number = attempt.attempt if attempt is not None else 1
    if number == 1:
        raise FirstAttemptFails("attempt 1 fails on purpose")
    return "ok"


@task(retries=(1, 2.0), name="bench.fail_once")
def fail_once() -> str:
    """Fails on attempt 1; its retry is due 2 s later and succeeds."""
    return _fail_on_attempt_1()


@task(name="bench.noop_async")
async def noop_async() -> None:
    """``bench.noop`` on the event loop: no hop to the worker's thread pool."""


@task(retries=(1, 1.0), name="bench.fail_once_1s")
def fail_once_1s() -> str:
    """``bench.fail_once`` with a 1 s retry delay (the suite's mixed-delay workload)."""
    return _fail_on_attempt_1()


@task(retries=(1, 10.0), name="bench.fail_once_10s")
def fail_once_10s() -> str:
    """``bench.fail_once`` with a 10 s retry delay, published before the 1 s group."""
    return _fail_on_attempt_1()


@task(name="bench.sleep")
def sleep(seconds: float) -> None:
    """Runs long enough to be running when its worker is killed (``bench_takeover``):
    ``retries=0``, so the lost attempt ends the execution ``worker_lost``."""
    time.sleep(seconds)
