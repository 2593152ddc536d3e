"""The broker's CPU time, read from its process's counters: what a workload cost RabbitMQ.

The RabbitMQ node is a ``beam.smp`` process on this machine; ``/proc/PID/stat``
holds its user and system time in clock ticks. The figure is node-wide: anything
else using the broker at the time is counted too, so run on a quiet broker.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The oldest ``beam.smp`` process (the main node, if a local cluster runs beside it)."""
    found: list[tuple[int, int]] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if (entry / "comm").read_text().strip() == "beam.smp":
                    found.append((_stat(int(entry.name))[19], int(entry.name)))
    return min(found)[1] if found else None


def _stat(pid: int) -> list[int]:
    """The numeric fields of ``/proc/PID/stat`` after the command name (field 3 onwards,
    so utime, field 14, is at index 11)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return [
        int(value) if value.lstrip("-").isdigit() else 0 for value in text.rsplit(")", 1)[1].split()
    ]


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (fields[11] + fields[12]) / TICKS_PER_S


class BrokerCpu:
    """CPU seconds the broker spent since ``start``; ``None`` where it cannot be read
    (a remote broker, or no permission)."""

    def __init__(self) -> None:
        self.pid = broker_pid()
        self._began: float | None = None

    @classmethod
    def start(cls) -> BrokerCpu:
        meter = cls()
        meter._began = meter._now()
        return meter

    def _now(self) -> float | None:
        if self.pid is None:
            return None
        with contextlib.suppress(OSError, IndexError):
            return cpu_seconds(self.pid)
        return None

    def elapsed(self) -> float | None:
        now = self._now()
        return None if now is None or self._began is None else now - self._began
