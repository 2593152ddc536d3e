"""A started execution, as its starter holds it: from a client, or from a parent attempt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ricochet.contracts import Json
from ricochet.engine import ExecutionState, Status
from ricochet.errors import Cancelled, RemoteError


class Waiter(Protocol):
    """Whoever can wait for an execution to end, or cancel it: a ``Client``, or a
    worker's child service."""

    async def wait(self, execution_id: str, timeout: float | None = None) -> ExecutionState: ...

    async def cancel(self, execution_id: str, reason: str = "") -> ExecutionState: ...


@dataclass(frozen=True, slots=True)
class Handle:
    """A started execution: wait for its end, or for its result."""

    id: str
    waiter: Waiter

    async def wait(self, timeout: float | None = None) -> ExecutionState:
        """The execution's state once it has ended (``TimeoutError`` after ``timeout`` s)."""
        return await self.waiter.wait(self.id, timeout)

    async def result(self, timeout: float | None = None) -> Json:
        """The result, or ``RemoteError`` carrying the final error's type and traceback
        (``Cancelled`` if the execution was cancelled)."""
        return outcome(await self.wait(timeout))

    async def cancel(self, reason: str = "") -> ExecutionState:
        """Cancel the execution (see ``Client.cancel``)."""
        return await self.waiter.cancel(self.id, reason)


def outcome(state: ExecutionState) -> Json:
    """An ended execution's result, or its final error raised as ``RemoteError``
    (``Cancelled`` if it was cancelled)."""
    if state.status is Status.SUCCEEDED:
        return state.result
    assert state.error is not None
    if state.status is Status.CANCELLED:
        raise Cancelled(state.execution_id, state.error)
    raise RemoteError(state.execution_id, state.error)
