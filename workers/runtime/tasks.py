"""``@task`` and ``@workflow``: declare a function as a target with a retry policy.

The policy is parsed when the decorator runs, so a nonsensical ``retries=``
(or ``retry_on=``/``dont_retry=``) fails at import with the task's name, not at
3 a.m. on the first failure.
Workers find tasks by scanning the modules they are given: there is no global
registry to fill or forget.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, cast, overload

from ricochet.contracts import Json, RetryPolicy
from ricochet.engine import RETRY_ANY, RetryFilter, parse_retries, parse_retry_filter
from ricochet.errors import DuplicateTarget, InvalidTimeout
from ricochet.workers.runtime.context import current_attempt

if TYPE_CHECKING:
    from ricochet.workers.client.handle import Handle

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"
SHAPES_KEPT = 64
"""Call shapes (argument count, keyword names) whose fit is remembered per task: binding
costs microseconds on every attempt, and a task is called in a handful of shapes."""
Kind = Literal["task", "workflow"]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """How a target runs: its name on the wire, its queue and its retry policy."""

    name: str
    queue: str
    policy: RetryPolicy
    kind: Kind = "task"
    timeout_s: float | None = None
    retry_filter: RetryFilter = RETRY_ANY


class Task(Generic[P, R]):
    """A declared target. Calling it runs the function here and now."""

    def __init__(self, fn: Callable[P, R], spec: TaskSpec) -> None:
        self.fn = fn
        self.spec = spec
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", spec.name)
        self.__wrapped__ = fn
        self.signature = _signature(fn)
        self._shapes: dict[tuple[object, ...], str | None] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def arguments_problem(self, args: Sequence[object], kwargs: Mapping[str, object]) -> str | None:
        """Why ``fn(*args, **kwargs)`` cannot be called (a missing or unexpected argument),
        or None: checked before the body runs, so such a call fails at once, never retried."""
        if self.signature is None:
            return None
        shape = (len(args), *kwargs)  # all that binding looks at: how many, and which names
        if shape in self._shapes:
            return self._shapes[shape]
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as err:
            problem: str | None = (
                f"{self.name}{_plain(self.signature)} cannot take these arguments: {err}"
            )
        else:
            problem = None
        if len(self._shapes) < SHAPES_KEPT:
            self._shapes[shape] = problem
        return problem

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


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    """The function's signature; None where Python cannot say (some built-ins)."""
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _plain(signature: inspect.Signature) -> inspect.Signature:
    """The signature as a caller reads it: names and defaults, no annotations (which
    ``from __future__ import annotations`` would show as quoted strings)."""
    empty = inspect.Parameter.empty
    return signature.replace(
        parameters=[p.replace(annotation=empty) for p in signature.parameters.values()],
        return_annotation=empty,
    )


def target_name(fn: Callable[..., Any]) -> str:
    """``module:function``, the default name on the wire (SPEC section 6)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def _timeout(task_name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidTimeout(f"task {task_name!r}: timeout must be seconds > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Declared:
    """What ``@task``/``@workflow`` were given, checked when they wrap the function."""

    kind: Kind
    retries: object
    queue: str
    name: str | None
    timeout: object
    retry_on: object
    dont_retry: object

    def spec(self, fn: Callable[..., Any]) -> TaskSpec:
        task_name = self.name or target_name(fn)
        return TaskSpec(
            task_name,
            self.queue,
            parse_retries(task_name, self.retries),
            self.kind,
            _timeout(task_name, self.timeout),
            parse_retry_filter(task_name, self.retry_on, self.dont_retry),
        )


def _declare(declared: Declared) -> Callable[[Callable[P, R]], Task[P, R]]:
    def wrap(fn: Callable[P, R]) -> Task[P, R]:
        return Task(fn, declared.spec(fn))

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
    retry_on: tuple[type[Exception], ...] | None = None,
    dont_retry: tuple[type[Exception], ...] = (),
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    retries: object = 0,
    queue: str = DEFAULT_QUEUE,
    name: str | None = None,
    timeout: float | None = None,
    retry_on: tuple[type[Exception], ...] | None = None,
    dont_retry: tuple[type[Exception], ...] = (),
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a task: ``@task`` or ``@task(retries=(5, 300, 600), queue="mail", timeout=60)``.

    ``timeout`` (seconds) fails an attempt that runs longer, with cause ``timeout``.
    ``retry_on=(...)`` retries only those exceptions (and subclasses); ``dont_retry=(...)``
    never retries those: such a failure ends the execution at once, with cause
    ``not_retryable`` (``engine.retry_filter``).
    """
    declared = Declared("task", retries, queue, name, timeout, retry_on, dont_retry)
    decorator: Callable[[Callable[P, R]], Task[P, R]] = _declare(declared)
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
    retry_on: tuple[type[Exception], ...] | None = None,
    dont_retry: tuple[type[Exception], ...] = (),
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def workflow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    retries: object = 0,
    queue: str = DEFAULT_QUEUE,
    name: str | None = None,
    timeout: float | None = None,
    retry_on: tuple[type[Exception], ...] | None = None,
    dont_retry: tuple[type[Exception], ...] = (),
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a workflow; it runs like a task (same retries, filters and events)."""
    declared = Declared("workflow", retries, queue, name, timeout, retry_on, dont_retry)
    decorator: Callable[[Callable[P, R]], Task[P, R]] = _declare(declared)
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
