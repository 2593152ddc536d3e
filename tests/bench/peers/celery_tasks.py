"""The benchmark's tasks as Celery tasks: ``celery -A tests.bench.peers.celery_tasks worker``.

Defaults kept where they matter to the comparison (prefork pool, early acks,
classic queue, persistent messages); results and remote control are off because
nothing reads them.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from celery import Celery, Task

from tests.bench.peers.marks import QUEUE_ENV, URL_ENV, mark

QUEUE = os.environ.get(QUEUE_ENV, "bench-celery")

app = Celery("bench", broker=os.environ.get(URL_ENV, "amqp://guest:guest@localhost:5672//"))
app.conf.update(
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    task_default_routing_key=QUEUE,
    task_ignore_result=True,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop() -> None:
    mark("start")
    mark("end")


@app.task(name="bench.fail_once", bind=True, max_retries=1)
def fail_once(self: Task[Any, Any], delay_s: float, group: str = "retry") -> None:
    """Fails its first run; the retry records how late it started after its ETA."""
    if self.request.retries == 0:
        mark("failed")
        raise self.retry(countdown=delay_s, exc=RuntimeError("attempt 1 fails on purpose"))
    eta = self.request.eta
    due = datetime.fromisoformat(eta).timestamp() if isinstance(eta, str) else time.time()
    mark(group, time.time() - due)
