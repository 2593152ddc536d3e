"""``@task`` and ``@workflow``: declare a function as a target with a retry policy.

The policy is parsed when the decorator runs, so a nonsensical ``retries=``
fails at import with the task's name, not at 3 a.m. on the first failure.
Workers find tasks by scanning the modules they are given: there is no global
registry to fill or forget.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, cast, overload

from ricochet.contracts import Json, RetryPolicy
from ricochet.engine import parse_retries
from ricochet.errors import DuplicateTarget, InvalidTimeout
from ricochet.workers.runtime.context import current_attempt

if TYPE_CHECKING:
    from ricochet.workers.client.handle import Handle

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"
Kind = Literal["task", "workflow"]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """How a target runs: its name on the wire, its queue and its retry policy."""

    name: str
    queue: str
    policy: RetryPolicy
    kind: Kind = "task"
    timeout_s: float | None = None


class Task(Generic[P, R]):
    """A declared target. Calling it runs the function here and now."""

    def __init__(self, fn: Callable[P, R], spec: TaskSpec) -> None:
        self.fn = fn
        self.spec = spec
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", spec.name)
        self.__wrapped__ = fn

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Outside a worker, run the function here. Inside an attempt, run it as a child
        execution and return its result (``await`` it from an async caller)."""
        context = current_attempt()
        if context is None or context.children is None:
            return self.fn(*args, **kwargs)
        return cast(R, context.children.call(self.name, args, kwargs))

    async def submit(self, *args: P.args, **kwargs: P.kwargs) -> Handle:
        """Start an execution and return its handle: a child when called inside an attempt,
        else through the current client."""
        context = current_attempt()
        if context is not None and context.children is not None:
            handle: Handle = await context.children.submit(self.name, args, kwargs)
            return handle
        from ricochet.workers.client.client import current_client

        return await current_client().submit(self.name, _json_args(args), _json_kwargs(kwargs))

    def __repr__(self) -> str:
        return f"<{self.spec.kind} {self.name} queue={self.spec.queue} {self.spec.policy}>"


def _json_args(args: tuple[object, ...]) -> tuple[Json, ...]:
    """Arguments cross the wire as JSON; the encoder refuses anything else at publish."""
    return cast(tuple[Json, ...], args)


def _json_kwargs(kwargs: dict[str, object]) -> dict[str, Json]:
    return cast(dict[str, Json], kwargs)


def target_name(fn: Callable[..., Any]) -> str:
    """``module:function``, the default name on the wire (SPEC section 6)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def _timeout(task_name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidTimeout(f"task {task_name!r}: timeout must be seconds > 0, got {value!r}")
    return float(value)


def _declare(
    kind: Kind, retries: object, queue: str, name: str | None, timeout: object
) -> Callable[[Callable[P, R]], Task[P, R]]:
    def wrap(fn: Callable[P, R]) -> Task[P, R]:
        task_name = name or target_name(fn)
        policy = parse_retries(task_name, retries)
        spec = TaskSpec(task_name, queue, policy, kind, _timeout(task_name, timeout))
        return Task(fn, spec)

    return wrap


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    retries: object = 0,
    queue: str = DEFAULT_QUEUE,
    name: str | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    retries: object = 0,
    queue: str = DEFAULT_QUEUE,
    name: str | None = None,
    timeout: float | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a task: ``@task`` or ``@task(retries=(5, 300, 600), queue="mail", timeout=60)``.

    ``timeout`` (seconds) fails an attempt that runs longer, with cause ``timeout``.
    """
    decorator: Callable[[Callable[P, R]], Task[P, R]] = _declare(
        "task", retries, queue, name, timeout
    )
    return decorator if fn is None else decorator(fn)


@overload
def workflow(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def workflow(
    *,
    retries: object = 0,
    queue: str = DEFAULT_QUEUE,
    name: str | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def workflow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    retries: object = 0,
    queue: str = DEFAULT_QUEUE,
    name: str | None = None,
    timeout: float | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a workflow; for now it runs like a task (same retries, same events)."""
    decorator: Callable[[Callable[P, R]], Task[P, R]] = _declare(
        "workflow", retries, queue, name, timeout
    )
    return decorator if fn is None else decorator(fn)


def tasks_in(module: ModuleType) -> list[Task[..., Any]]:
    """Every task a module defines or imports, by scanning its namespace."""
    return [value for value in vars(module).values() if isinstance(value, Task)]


def index_tasks(tasks: Sequence[Task[..., Any]]) -> dict[str, Task[..., Any]]:
    """Target name -> task; the same task imported twice is fine, two under one name are not."""
    by_name: dict[str, Task[..., Any]] = {}
    for item in tasks:
        known = by_name.setdefault(item.name, item)
        if known is not item and known.fn is not item.fn:
            raise DuplicateTarget(f"two functions are declared as {item.name!r}")
    return by_name
