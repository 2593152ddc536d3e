"""Helpers for the benchmark: worker subprocesses, namespaces and their clean-up, statistics."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from ricochet.workers.amqp.topology import Names, core_queues, exchanges
from ricochet.workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TASKS_MODULE = "tests.bench.noop_tasks"

_live: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort: no worker outlives the benchmark, whatever happened."""
    for process in list(_live):
        with contextlib.suppress(OSError):
            process.kill()


def new_namespace() -> str:
    return f"bench-{uuid.uuid4().hex[:10]}"


def settings_for(namespace: str) -> Settings:
    return Settings.from_env(namespace=namespace)


def masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def ricochet_executable() -> str:
    """The CLI next to this interpreter (``.venv/bin/ricochet``), else the repo's venv."""
    for candidate in (Path(sys.executable).parent / "ricochet", REPO / ".venv/bin/ricochet"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("ricochet")
    if found is None:
        raise RuntimeError("no `ricochet` executable: run `pip install -e .` in the venv first")
    return found


class WorkerProcess:
    """``ricochet worker tests.bench.noop_tasks`` in a namespace, logging to a temp file."""

    def __init__(self, settings: Settings, concurrency: int, options: Sequence[str] = ()) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.options = tuple(options)
        """More ``ricochet worker`` flags (``--heartbeat 0.5``, say)."""
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"ricochet-bench-{settings.namespace}-", suffix=".log", delete=False
        )
        self._process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.started_at = 0.0
        self.complaints: list[str] = []
        """The worker's warning and error log lines, read when it stopped."""

    @property
    def log_path(self) -> str:
        return self._log.name

    def spawn(self) -> None:
        env = {
            **os.environ,
            "RICOCHET_NAMESPACE": self.settings.namespace,
            "RICOCHET_AMQP_URL": self.settings.amqp_url,
            "RICOCHET_LOG_JSON": "true",
        }
        command = [ricochet_executable(), "worker", TASKS_MODULE]
        command += ["--concurrency", str(self.concurrency), "--grace", "5", *self.options]
        self.spawned_at = time.perf_counter()
        self._process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        _live.add(self._process)

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Until the worker logged ``worker.started``; raises with its log if it never does."""
        assert self._process is not None, "spawn() first"
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if "worker.started" in self._read_log():
                self.started_at = time.perf_counter()
                return
            if self._process.poll() is not None:
                break
            await asyncio.sleep(0.01)
        raise RuntimeError(f"worker did not start; its log:\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self._process is not None, "spawn() first"
        return self._process.pid

    def rss_mib(self) -> float:
        """The worker's resident memory now, from /proc."""
        assert self._process is not None, "spawn() first"
        for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is recorded on the way out."""
        assert self._process is not None, "spawn() first"
        self._process.kill()

    def read_log(self) -> str:
        """Everything the worker logged so far (JSON lines)."""
        return self._read_log()

    def _read_log(self) -> str:
        path = Path(self.log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self._read_log().splitlines()[-lines:])

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(process.wait, timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait)
            _live.discard(process)
        self._finish_log()

    def _finish_log(self) -> None:
        """Keep the worker's warnings and errors, then remove its log file."""
        if self._log.closed:
            return
        self._log.close()
        self.complaints = [
            line
            for line in self._read_log().splitlines()
            if '"level":"warning"' in line.replace(" ", "")
            or '"level":"error"' in line.replace(" ", "")
        ]
        Path(self.log_path).unlink(missing_ok=True)


def namespace_objects(namespace: str, delays_ms: Sequence[int] = ()) -> tuple[list[str], list[str]]:
    """(queues, exchanges) that Ricochet may have declared in ``namespace``."""
    names = Names(namespace)
    queues = [spec.name for spec in core_queues(names, Settings(namespace=namespace))]
    queues.append(names.work_queue("default"))
    queues.extend(names.delay_queue(ms) for ms in delays_ms)
    return queues, [spec.name for spec in exchanges(names)]


async def delete_objects(url: str, queues: Sequence[str], exchange_names: Sequence[str]) -> None:
    """Delete queues and exchanges by name (missing ones are fine), whatever they hold."""
    connection = await _connect_patiently(url)
    try:
        for queue in queues:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)
            await _close_quietly(channel)
        for exchange in exchange_names:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(exchange)
            await _close_quietly(channel)
    finally:
        await connection.close()


async def _connect_patiently(url: str, patience_s: float = 30.0) -> AbstractConnection:
    """Connect, retrying for a while: clean-up must outlast a broker restart."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await aio_pika.connect(url)
        except (OSError, aio_pika.exceptions.AMQPError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _close_quietly(channel: AbstractChannel) -> None:
    if not channel.is_closed:
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.close()


async def delete_namespace(
    url: str,
    namespace: str,
    delays_ms: Sequence[int] = (),
    extra_queues: Sequence[str] = (),
    extra_exchanges: Sequence[str] = (),
) -> None:
    queues, exchange_names = namespace_objects(namespace, delays_ms)
    await delete_objects(url, [*queues, *extra_queues], [*exchange_names, *extra_exchanges])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> str:
    """``p50 / p99 / max`` in milliseconds."""
    if not seconds:
        return "no samples"
    p50, p99, top = (percentile(seconds, q) * 1000 for q in (50, 99, 100))
    return f"{p50:.0f} / {p99:.0f} / {top:.0f} ms"
