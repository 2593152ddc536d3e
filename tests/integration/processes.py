"""Real ``ricochet worker`` processes for tests that kill, signal and cut them off."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from ricochet.workers.settings import Settings
from tests.broker import ctl_argv
from tests.integration.process_tasks import MARKERS_ENV

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.process_tasks"


class WorkerProcess:
    """One ``ricochet worker`` subprocess with its log in a file."""

    def __init__(self, settings: Settings, markers: Path, log: Path, *options: str) -> None:
        self.log = log
        env = {
            **os.environ,
            "RICOCHET_AMQP_URL": settings.amqp_url,
            "RICOCHET_NAMESPACE": settings.namespace,
            MARKERS_ENV: str(markers),
        }
        command = [sys.executable, "-m", "ricochet", "--log-json", "worker", MODULE, *options]
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def started(self, timeout: float = 30.0) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while '"worker.started"' not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{self.text()}")
            await asyncio.sleep(0.05)
        return self

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    async def exited(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.pid} did not exit:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log_file.close()


class Fleet:
    """Starts workers and always kills them at the end, whatever the test did."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        self.markers = directory / "markers"
        self.markers.mkdir(exist_ok=True)
        self._directory = directory
        self.workers: list[WorkerProcess] = []

    async def start(self, *options: str) -> WorkerProcess:
        log = self._directory / f"worker-{len(self.workers)}.log"
        defaults = ("--heartbeat", "0.5", "--loss-window", "3", "--concurrency", "8")
        worker = WorkerProcess(self.settings, self.markers, log, *defaults, *options)
        self.workers.append(worker)
        return await worker.started()

    def by_worker_id(self, worker_id: str | None) -> WorkerProcess:
        assert worker_id is not None
        pid = int(worker_id.rsplit(":", 1)[1])
        return next(w for w in self.workers if w.pid == pid)

    def runs(self, execution_id: str) -> list[str]:
        """One line per time the body ran: 'attempt pid'."""
        marker = self.markers / execution_id
        return marker.read_text().splitlines() if marker.exists() else []

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


@asynccontextmanager
async def fleet(settings: Settings, directory: Path) -> AsyncIterator[Fleet]:
    started = Fleet(settings, directory)
    try:
        yield started
    finally:
        started.close()


def rabbitmqctl(*args: str, timeout: float = 120) -> None:
    subprocess.run(ctl_argv(*args), check=True, capture_output=True, timeout=timeout)


def vhost_of(settings: Settings) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(settings.amqp_url).path.lstrip("/")) or "/"


def pids(workers: Sequence[WorkerProcess]) -> set[int]:
    return {w.pid for w in workers}
