"""Running a target function: async ones on the event loop, sync ones in a thread pool.

A function's result must be JSON (never pickle): one that is not fails the
attempt with an error naming its type.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import traceback
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from contracts import ErrorInfo, Json, encode_json
from workers.context import AttemptContext, set_current
from workers.tasks import Task


@dataclass(frozen=True, slots=True)
class Returned:
    result: Json


@dataclass(frozen=True, slots=True)
class Raised:
    error: ErrorInfo
    exception: BaseException


Ran = Returned | Raised


class ResultNotSerialisable(TypeError):
    """The function returned something that is not JSON."""


def error_info(exc: BaseException) -> ErrorInfo:
    """The remote type (qualified), the message and the formatted traceback."""
    kind = type(exc)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return ErrorInfo(
        type=f"{module}{kind.__qualname__}",
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )


def _checked(result: Any) -> Json:
    try:
        encode_json(result)
    except TypeError as err:
        raise ResultNotSerialisable(
            f"result of type {type(result).__qualname__} is not JSON-serialisable: {err}"
        ) from err
    return result  # type: ignore[no-any-return]


async def invoke(
    task: Task[..., Any],
    args: tuple[Json, ...],
    kwargs: Mapping[str, Json],
    context: AttemptContext,
    pool: Executor,
) -> Ran:
    """Run one attempt of ``task``; exceptions become ``Raised``, cancellation propagates."""
    set_current(context)
    try:
        if task.is_async:
            result = await task.fn(*args, **kwargs)
        else:
            call = functools.partial(task.fn, *args, **kwargs)
            snapshot = contextvars.copy_context()
            result = await asyncio.get_running_loop().run_in_executor(pool, snapshot.run, call)
        return Returned(_checked(result))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Raised(error_info(exc), exc)
    finally:
        set_current(None)
