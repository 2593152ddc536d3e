"""Running a target function: async ones on the event loop, sync ones in a thread pool.

A function's result must be JSON (never pickle): one that is not fails the
attempt with an error naming its type. One that is JSON but breaks the shared
limits (``contracts.limits``: too deep, a number JSON would change, too many
bytes) fails the attempt with its own cause, ``result_not_readable`` or
``result_too_large``, and is never recorded. Errors are cut to a bounded size.

Arguments that do not fit the function's signature fail the attempt before it
runs (``BadArguments``, cause ``rejected``), never retried: a retry would get the
same arguments. An exception the task's ``retry_on``/``dont_retry`` rule out
fails it with cause ``not_retryable``, also never retried.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ricochet.contracts import (
    DEFAULT_LIMITS,
    ErrorInfo,
    FailureCause,
    Json,
    Limits,
    NotReadable,
    TooLarge,
    check_result,
)
from ricochet.contracts.limits import cut
from ricochet.errors import RemoteError, ResultNotReadable, ResultNotSerialisable, ResultTooLarge
from ricochet.workers.runtime.context import AttemptContext, set_current
from ricochet.workers.runtime.tasks import Task

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Returned:
    result: Json


@dataclass(frozen=True, slots=True)
class Raised:
    error: ErrorInfo
    cause: FailureCause = FailureCause.EXCEPTION
    retryable: bool = True
    """False: the execution ends with this failure, whatever retries are left."""


Ran = Returned | Raised


class CountingPool(ThreadPoolExecutor):
    """A thread pool that knows how many calls are still running in it.

    A sync function cannot be stopped: after a timeout or the shutdown grace it
    runs on, and only then must the worker exit without waiting for it.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers, thread_name_prefix)
        self._lock = threading.Lock()
        self._busy = 0

    @property
    def busy(self) -> int:
        return self._busy

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        def counted() -> T:
            with self._lock:
                self._busy += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._busy -= 1

        return super().submit(counted)

    def prestart(self, threads: int) -> None:
        """Start ``threads`` threads now instead of during the first busy moments.

        The pool would grow to them anyway under load; starting them up front
        keeps thread creation out of the first burst's latency and makes the
        worker's memory what it will stay (not a climb over its first thousands
        of attempts that looks like a leak).
        """
        gate = threading.Barrier(threads, timeout=10)
        for _ in range(threads):  # each waits for the others, so none is reused
            super().submit(gate.wait)


def error_info(exc: BaseException) -> ErrorInfo:
    """The remote type (qualified), the message and the formatted traceback.

    A child's error passed on unhandled keeps the child's type and message, with
    both tracebacks, so the root cause is what the waiter sees.
    """
    if isinstance(exc, RemoteError):
        here = "".join(traceback.format_exception(exc))
        return ErrorInfo(
            type=cut(exc.remote_type, 1000),
            message=cut(exc.remote_message),
            traceback=cut(f"{exc.remote_traceback}\n(in child {exc.execution_id}, then:)\n{here}"),
        )
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return ErrorInfo(
        type=cut(f"{module}{kind.__qualname__}", 1000),
        message=cut(_message(exc)),
        traceback=cut("".join(traceback.format_exception(exc))),
    )


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as err:  # a user's __str__ may raise: the attempt still fails, described
        return f"<the exception's message could not be made: {type(err).__name__}>"


def _checked(result: Any, limits: Limits) -> Ran:
    """``Returned`` for a result within the limits, else the failure that says why not."""
    try:
        check_result(result, limits)
    except TooLarge as err:
        return Raised(error_info(ResultTooLarge(str(err))), FailureCause.RESULT_TOO_LARGE)
    except NotReadable as err:
        problem: Exception = ResultNotReadable(str(err))
        if isinstance(err.__cause__, TypeError):
            problem = ResultNotSerialisable(
                f"result of type {type(result).__qualname__} is not JSON-serialisable:"
                f" {err.__cause__}"
            )
        return Raised(error_info(problem), FailureCause.RESULT_NOT_READABLE)
    return Returned(result)


async def invoke(
    task: Task[..., Any],
    args: tuple[Json, ...],
    kwargs: Mapping[str, Json],
    context: AttemptContext,
    pool: Executor,
    limits: Limits = DEFAULT_LIMITS,
) -> Ran:
    """Run one attempt of ``task``; exceptions become ``Raised``, cancellation propagates.

    With a timeout, an async function is cancelled when it expires. A sync one
    cannot be stopped: its thread runs on until the function returns, and what
    it returns then is dropped, since the attempt's outcome is already recorded.
    """
    problem = task.arguments_problem(args, kwargs)
    if problem is not None:
        return Raised(
            ErrorInfo(type="BadArguments", message=cut(problem)), FailureCause.REJECTED, False
        )
    set_current(context)
    deadline = asyncio.timeout(task.spec.timeout_s)
    try:
        async with deadline:
            result = await _call(task, args, kwargs, pool)
    except asyncio.CancelledError:
        raise
    except TimeoutError as exc:
        if not deadline.expired():
            return raised(task, exc)
        return Raised(_timed_out(task), FailureCause.TIMEOUT)
    except Exception as exc:
        return raised(task, exc)
    finally:
        set_current(None)
    return _checked(result, limits)


def raised(task: Task[..., Any], exc: Exception) -> Raised:
    """The failure an exception from the body makes: ``not_retryable`` if the task's
    ``retry_on``/``dont_retry`` say so (``engine.retry_filter``)."""
    if task.spec.retry_filter.allows(type(exc)):
        return Raised(error_info(exc))
    return Raised(error_info(exc), FailureCause.NOT_RETRYABLE, retryable=False)


async def _call(
    task: Task[..., Any], args: tuple[Json, ...], kwargs: Mapping[str, Json], pool: Executor
) -> Any:
    if task.is_async:
        return await task.fn(*args, **kwargs)
    call = functools.partial(task.fn, *args, **kwargs)
    snapshot = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, snapshot.run, call)


def _timed_out(task: Task[..., Any]) -> ErrorInfo:
    kind = "cancelled" if task.is_async else "left running in its thread; its result is dropped"
    return ErrorInfo(
        type="AttemptTimeout",
        message=f"{task.name} ran past its timeout of {task.spec.timeout_s:g} s ({kind})",
    )
