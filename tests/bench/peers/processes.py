"""Worker processes of any system: spawned with a log file, measured, always stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.bench.support import REPO, _live


class Spawned:
    """One worker command (and its children, for pools that fork)."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="ricochet-bench-peer-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            list(command),
            cwd=REPO,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        _live.add(self.process)

    def rss_mib(self) -> float:
        """Resident memory of the process and all its descendants."""
        return sum(_rss_kib(pid) for pid in _tree(self.process.pid)) / 1024

    def tail(self, lines: int = 15) -> str:
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole session, then SIGKILL what is left."""
        process = self.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        _live.discard(process)
        self._remove_log()

    def _remove_log(self) -> None:
        if not self._log.closed:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (parents read from each ``stat``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
