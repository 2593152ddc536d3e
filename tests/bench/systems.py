"""The workloads of the suite, as one interface that Ricochet and each peer implement.

Every method runs in fresh queues (or a fresh namespace) that it deletes at the
end, starts the worker processes it needs and stops them whatever happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

BACKLOG = 2_000
"""Memory runs submit in chunks and keep at most this many executions waiting: a
worker's memory should depend on what it holds, not on how much it has run."""


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of the worker (with its pool processes) after small and large runs."""

    after_small_mib: float
    after_large_mib: float

    @property
    def growth_mib(self) -> float:
        return self.after_large_mib - self.after_small_mib


class System(Protocol):
    """What the suite measures of each system."""

    name: str
    broker_cpu_s: float | None
    """The broker's CPU seconds over the last ``drain``, submission included (``broker_cpu``);
    None where the broker's process cannot be read."""

    async def drain(self, executions: int, workers: int) -> float:
        """Executions/s of ``workers`` processes over no-ops submitted before they started:
        executions / (last end - first start)."""

    async def retry_lateness(self, count: int, delay_s: float) -> list[float]:
        """Seconds each retry started after it was due; ``count`` first attempts fail at once."""

    async def mixed_lateness(self, count: int, slow_s: float, fast_s: float) -> list[float]:
        """``count`` retries due in ``slow_s``, then ``count`` due in ``fast_s``: the fast
        group's lateness (is it held back behind the slow one?)."""

    async def memory(self, small: int, large: int) -> Memory:
        """RSS after ``small`` no-op executions, and after ``large`` in all."""
