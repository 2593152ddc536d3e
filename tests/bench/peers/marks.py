"""What peer tasks report, and how: one line per event, appended to a file.

Neither peer records history, so their tasks write a line per start and end
(``<kind> <unix time> <value>``) to the file named by ``BENCH_MARKS``; each
process appends its own lines (``O_APPEND``, one ``write`` per line) and the
suite reads the file after the run. A line costs a task a few microseconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKS_ENV = "BENCH_MARKS"
QUEUE_ENV = "BENCH_QUEUE"
URL_ENV = "BENCH_AMQP_URL"

_file: int | None = None


def mark(kind: str, value: float = 0.0) -> None:
    """Append ``kind time value`` to this run's marks file."""
    global _file
    if _file is None:
        _file = os.open(os.environ[MARKS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_file, f"{kind} {time.time():.6f} {value:.6f}\n".encode())


@dataclass(slots=True)
class Marks:
    """The lines of a marks file, by kind: (time, value) pairs."""

    by_kind: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Marks:
        marks = cls()
        if path.exists():
            for line in path.read_text().splitlines():
                kind, at, value = line.split()
                marks.by_kind.setdefault(kind, []).append((float(at), float(value)))
        return marks

    def times(self, kind: str) -> list[float]:
        return [at for at, _ in self.by_kind.get(kind, [])]

    def values(self, kind: str) -> list[float]:
        return [value for _, value in self.by_kind.get(kind, [])]
