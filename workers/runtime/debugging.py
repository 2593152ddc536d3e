"""Reproducing a recorded attempt on a laptop: the target, run here, with its recorded inputs.

Nothing is published: the function runs in this process with the execution's
arguments and an attempt context like the worker's, so code that looks at
``current_attempt()`` behaves as it did; a child call runs its function inline.
"""

from __future__ import annotations

import inspect
import pdb
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ricochet.engine import AttemptState, ExecutionState
from ricochet.errors import CannotDebug
from ricochet.workers.runtime.context import AttemptContext, set_current
from ricochet.workers.runtime.runner import error_info
from ricochet.workers.runtime.tasks import Task, index_tasks, tasks_in


def find_task(modules: Sequence[ModuleType], target: str | None) -> Task[..., Any]:
    tasks = index_tasks([item for module in modules for item in tasks_in(module)])
    if target is None or target not in tasks:
        names = ", ".join(sorted(tasks)) or "none"
        raise CannotDebug(f"target {target!r} is not in the given modules (they have: {names})")
    return tasks[target]


def chosen_attempt(state: ExecutionState, number: int | None) -> AttemptState | None:
    """Attempt ``number``, else the last failed one, else the last one (None: never ran)."""
    if number is not None:
        found = [a for a in state.attempts if a.number == number]
        if not found:
            raise CannotDebug(f"execution {state.execution_id} has no attempt {number}")
        return found[0]
    failed = [a for a in state.attempts if a.outcome == "failed"]
    candidates = failed or list(state.attempts)
    return candidates[-1] if candidates else None


async def run_here(
    task: Task[..., Any], state: ExecutionState, attempt: AttemptState | None, post_mortem: bool
) -> int:
    """Run the attempt again here; 1 if it raised (reproduced or not), 0 if it returned."""
    number = attempt.number if attempt else 1
    set_current(AttemptContext(state.execution_id, number, task.name, "debug"))
    try:
        result = task.fn(*state.args, **state.kwargs)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        traceback.print_exception(exc)
        _compare(exc, attempt)
        if post_mortem:
            pdb.post_mortem(exc.__traceback__)
        return 1
    finally:
        set_current(None)
    print(f"attempt {number} ran to completion here, returning {result!r}")
    return 0


def _compare(exc: BaseException, attempt: AttemptState | None) -> None:
    here = error_info(exc)
    recorded = attempt.error if attempt else None
    if recorded is None:
        print(f"raised {here.type}: {here.message} (nothing was recorded for this attempt)")
    elif (here.type, here.message) == (recorded.type, recorded.message):
        print(f"reproduced: {here.type}: {here.message}")
    else:
        print(f"raised {here.type}: {here.message}")
        print(f"recorded {recorded.type}: {recorded.message}")
