"""Celery and Dramatiq as ``System``s: how each is started, fed and measured.

Both run with their documented defaults, except what would only slow them with
no use here (results, remote control). Submissions happen in this process,
before the measured part; what is measured comes from the marks their tasks
write (``marks.py``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.broker_cpu import BrokerCpu
from tests.bench.peers.marks import MARKS_ENV, QUEUE_ENV, URL_ENV, Marks
from tests.bench.peers.processes import Spawned
from tests.bench.support import delete_objects
from tests.bench.systems import BACKLOG, Memory

BIN = Path(sys.executable).parent
POLL_S = 0.2


class Peer(ABC):
    """A peer system; subclasses say how to start a worker and how to send tasks."""

    name: str

    def __init__(self, url: str) -> None:
        self.url = url
        self.broker_cpu_s: float | None = None

    def env(self) -> dict[str, str]:
        """Environment of its workers beyond the run's own (a setting, say)."""
        return {}

    @abstractmethod
    def command(self, queue: str) -> list[str]:
        """The worker command for ``queue``."""

    @abstractmethod
    def send_noops(self, queue: str, count: int) -> None:
        """Publish ``count`` no-op tasks (blocking)."""

    @abstractmethod
    def send_fail_once(self, queue: str, count: int, delay_s: float, group: str) -> None:
        """Publish ``count`` tasks that fail once and retry after ``delay_s``."""

    @abstractmethod
    def queues(self, queue: str) -> tuple[list[str], list[str]]:
        """(queues, exchanges) the peer declares for ``queue``, to delete."""

    async def drain(self, executions: int, workers: int) -> float:
        async with self._run() as run:
            broker = BrokerCpu.start()
            await asyncio.to_thread(self.send_noops, run.queue, executions)
            run.spawn(workers)
            marks = await run.wait_for("end", executions, timeout=max(120.0, executions / 200))
            self.broker_cpu_s = broker.elapsed()
        return executions / (max(marks.times("end")) - min(marks.times("start")))

    async def retry_lateness(self, count: int, delay_s: float) -> list[float]:
        async with self._run() as run:
            run.spawn(1)
            await asyncio.to_thread(self.send_fail_once, run.queue, count, delay_s, "retry")
            marks = await run.wait_for("retry", count, timeout=delay_s + 120)
        return marks.values("retry")

    async def mixed_lateness(self, count: int, slow_s: float, fast_s: float) -> list[float]:
        async with self._run() as run:
            run.spawn(1)
            await asyncio.to_thread(self.send_fail_once, run.queue, count, slow_s, "slow")
            await run.wait_for("failed", count, timeout=120)
            await asyncio.to_thread(self.send_fail_once, run.queue, count, fast_s, "fast")
            await run.wait_for("slow", count, timeout=slow_s + 120)
            marks = await run.wait_for("fast", count, timeout=slow_s + 120)
        return marks.values("fast")

    async def memory(self, small: int, large: int) -> Memory:
        async with self._run() as run:
            (worker,) = run.spawn(1)
            await run.feed(self, small)
            first = worker.rss_mib()
            await run.feed(self, large - small)
            return Memory(first, worker.rss_mib())

    def _run(self) -> _Run:
        return _Run(self)


class _Run:
    """One measurement: a fresh queue, a marks file, workers; all removed at the end."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.queue = f"bench-{peer.name.lower()}-{uuid.uuid4().hex[:8]}"
        self.marks_path = Path(tempfile.gettempdir()) / f"{self.queue}.marks"
        self.workers: list[Spawned] = []
        self.sent = 0

    async def __aenter__(self) -> _Run:
        return self

    async def __aexit__(self, *_: object) -> None:
        for worker in self.workers:
            await worker.stop()
        self.marks_path.unlink(missing_ok=True)
        await delete_objects(self.peer.url, *self.peer.queues(self.queue))

    def spawn(self, count: int) -> list[Spawned]:
        env = {MARKS_ENV: str(self.marks_path), QUEUE_ENV: self.queue, URL_ENV: self.peer.url}
        env.update(self.peer.env())
        started = [Spawned(self.peer.command(self.queue), env) for _ in range(count)]
        self.workers += started
        return started

    async def wait_for(self, kind: str, count: int, timeout: float) -> Marks:
        """Until ``count`` marks of ``kind`` were written; raises with the workers' logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            marks = Marks.read(self.marks_path)
            if len(marks.times(kind)) >= count:
                return marks
            if any(worker.process.poll() is not None for worker in self.workers):
                break
            await asyncio.sleep(POLL_S)
        logs = "\n".join(worker.tail() for worker in self.workers)
        raise RuntimeError(f"{self.peer.name}: no {count} {kind!r} marks in {timeout} s\n{logs}")

    async def feed(self, peer: Peer, count: int) -> None:
        """Send ``count`` no-ops in chunks, never more than ``BACKLOG`` waiting; wait for all."""
        target = self.sent + count
        while self.sent < target:
            chunk = min(BACKLOG, target - self.sent)
            await asyncio.to_thread(peer.send_noops, self.queue, chunk)
            self.sent += chunk
            await self.wait_for("end", self.sent - BACKLOG, timeout=120)
        await self.wait_for("end", self.sent, timeout=120)


class CeleryPeer(Peer):
    """Celery 5: by default its prefork pool with 2 processes (the cores); with ``window``,
    ``-P solo --prefetch-multiplier <window>``: one process taking as many messages at
    once as Ricochet's ``--concurrency 64`` does."""

    concurrency = 2

    def __init__(self, url: str, window: int | None = None) -> None:
        super().__init__(url)
        self.window = window
        self.name = "Celery" if window is None else f"Celery-{window}"

    def command(self, queue: str) -> list[str]:
        pool = ["-c", str(self.concurrency), "-P", "prefork"]
        if self.window is not None:
            pool = ["-P", "solo", "--prefetch-multiplier", str(self.window)]
        return [
            str(BIN / "celery"), "-A", "tests.bench.peers.celery_tasks", "worker", "-Q", queue,
            *pool, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ]  # fmt: skip

    def send_noops(self, queue: str, count: int) -> None:
        from tests.bench.peers import celery_tasks as tasks

        with tasks.app.producer_or_acquire() as producer:
            for _ in range(count):
                tasks.noop.apply_async(queue=queue, producer=producer)

    def send_fail_once(self, queue: str, count: int, delay_s: float, group: str) -> None:
        from tests.bench.peers import celery_tasks as tasks

        with tasks.app.producer_or_acquire() as producer:
            for _ in range(count):
                tasks.fail_once.apply_async((delay_s, group), queue=queue, producer=producer)

    def queues(self, queue: str) -> tuple[list[str], list[str]]:
        return [queue], [queue]


class DramatiqPeer(Peer):
    """Dramatiq 2, one worker process with its default 8 threads; by default it prefetches
    twice its threads (16), with ``prefetch`` that many (``dramatiq_queue_prefetch``)."""

    def __init__(self, url: str, prefetch: int | None = None) -> None:
        super().__init__(url)
        self.prefetch = prefetch
        self.name = "Dramatiq" if prefetch is None else f"Dramatiq-{prefetch}"

    def env(self) -> dict[str, str]:
        return {} if self.prefetch is None else {"dramatiq_queue_prefetch": str(self.prefetch)}

    def command(self, queue: str) -> list[str]:
        return [
            str(BIN / "dramatiq"), "tests.bench.peers.dramatiq_tasks",
            "--processes", "1", "--threads", "8", "--queues", queue,
        ]  # fmt: skip

    def send_noops(self, queue: str, count: int) -> None:
        from tests.bench.peers import dramatiq_tasks as tasks

        self._send(queue, [tasks.noop.message() for _ in range(count)])

    def send_fail_once(self, queue: str, count: int, delay_s: float, group: str) -> None:
        from tests.bench.peers import dramatiq_tasks as tasks

        self._send(queue, [tasks.fail_once.message(delay_s, group) for _ in range(count)])

    @staticmethod
    def _send(queue: str, messages: Sequence[Any]) -> None:
        from tests.bench.peers import dramatiq_tasks as tasks

        for message in messages:
            tasks.broker.enqueue(message.copy(queue_name=queue))

    def queues(self, queue: str) -> tuple[list[str], list[str]]:
        return [queue, f"{queue}.DQ", f"{queue}.XQ"], []
